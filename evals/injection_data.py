"""The labelled data behind the injection classifier (`meshpilot guard train`) and its measurement.

Two kinds of text, one head each:
- questions (what a user sends): CyberSecEval's direct prompt injections are the positives; benign
  questions are the negatives: our data-engineering training questions (evals/training/), the
  golden questions of the sample knowledge base, BIPIA's e-mail and table questions.
- documents (what retrieval returns): BIPIA's benign e-mails, tables and code answers, the sample
  knowledge base's passages, our dependencies' READMEs are the negatives; the same documents with
  one of BIPIA's attack instructions planted at a segment boundary (start, middle or end, as BIPIA
  does) and CyberSecEval's indirect injections are the positives. A document is scored segment by
  segment (rag.guards.injection.segments), so the document head learns on segments: the planted
  instruction against the document's own segments (`segment_labeller`).

Splits are grouped so that near-copies never straddle them: BIPIA's own train/test files (its attack
categories differ between the two); CyberSecEval by clusters of near-duplicate inputs; our
questions by template; passages by source file. evals/golden/benign_questions.yaml is never trained on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import yaml

from evals.calibration import load_golden
from rag.documents import parse, read_bytes, scan
from rag.errors import UsageError
from rag.guards.injection import heuristic_categories, segments
from rag.samples import sample_knowledge_dir

Kind = Literal["question", "document"]
Split = Literal["train", "test"]
SPLITS: tuple[Split, Split] = ("train", "test")
MAX_DOCUMENT_WORDS = 400  # BIPIA tables run to 420 words; longer ones are clipped
TEMPLATE_CAP = 40  # expansions kept per template of the training questions


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    split: Split
    source: str
    kind: Kind
    group: str
    subset: str = ""  # CyberSecEval: "risk category/variant"; BIPIA attacks: the attack's category
    payload: str = ""  # planted documents: the attack planted


def _bucket(key: str, test_share: int = 5) -> Split:
    return "test" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % test_share == 0 else "train"


def _clip(text: str, words: int = MAX_DOCUMENT_WORDS) -> str:
    found = list(re.finditer(r"\S+", text))
    return text if len(found) <= words else text[: found[words - 1].end()]


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def near_duplicate_groups(texts: list[str], threshold: float = 0.5) -> list[int]:
    """Connected components of texts whose word-trigram Jaccard similarity is >= threshold."""
    sets = [_shingles(t) for t in texts]
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(texts)), 2):
        union = len(sets[i] | sets[j])
        if union and len(sets[i] & sets[j]) / union >= threshold:
            parent[root(i)] = root(j)
    return [root(i) for i in range(len(texts))]


def cyberseceval(injection: Path) -> list[Example]:
    rows = json.loads((injection / "cyberseceval" / "prompt_injection.json").read_text(encoding="utf-8"))
    groups = near_duplicate_groups([str(r["user_input"]) for r in rows])
    examples = []
    for row, group in zip(rows, groups, strict=True):
        key = f"cyberseceval-{min(int(r['prompt_id']) for r, g in zip(rows, groups, strict=True) if g == group)}"
        kind: Kind = "document" if row["injection_type"] == "indirect" else "question"
        examples.append(
            Example(
                str(row["user_input"]),
                1,
                _bucket(key, 4),
                "cyberseceval",
                kind,
                key,
                f"{row['risk_category']}/{row['injection_variant']}",
            )
        )
    return examples


def _bipia_context(row: dict[str, object]) -> str:
    context = row["context"]
    return "\n".join(str(x) for x in context) if isinstance(context, list) else str(context)


def plant(context: str, attack: str, rng: random.Random) -> str:
    """The attack as its own segment at the start, in the middle or at the end of the context."""
    lines = context.split("\n")
    at = rng.choice([0, len(lines) // 2, len(lines)])
    return "\n".join([*lines[:at], attack, *lines[at:]])


def bipia_attacks(injection: Path, split: Split) -> dict[str, list[tuple[str, str]]]:
    """BIPIA's attacks of one split as (category, text), for text tasks and for code tasks."""
    attacks = {}
    for kind in ("text", "code"):
        data = json.loads((injection / "bipia" / f"{kind}_attack_{split}.json").read_text(encoding="utf-8"))
        attacks[kind] = [(category, a) for category, items in data.items() for a in items]
    return attacks


def bipia(
    injection: Path,
    seed: int,
    extra_train_attacks: Sequence[tuple[str, str]] = (),
    train_tables: int = 300,
    plantings: int = 2,
) -> list[Example]:
    """Each context as it is (0) and with `plantings` different attacks of its split planted (1).
    `extra_train_attacks` (category, text) join the text attacks planted in the training split."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    examples: list[Example] = []
    for split in SPLITS:
        attacks = bipia_attacks(injection, split)
        if split == "train":
            attacks["text"] += extra_train_attacks
        for task in ("email", "table", "code"):
            lines = (injection / "bipia" / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            rows = [json.loads(x) for x in lines if x.strip()]
            if task == "table" and split == "train":
                rows = rng.sample(rows, min(train_tables, len(rows)))
            pool = attacks["code" if task == "code" else "text"]
            for n, row in enumerate(rows):
                context = _clip(_bipia_context(row))
                group = f"bipia-{task}-{split}-{n}"
                examples.append(Example(context, 0, split, f"bipia-{task}", "document", group))
                for category, attack in rng.sample(pool, plantings):
                    planted = plant(context, attack, rng)
                    examples.append(
                        Example(planted, 1, split, f"bipia-{task}-planted", "document", group, category, attack)
                    )
                if row.get("question"):
                    question = re.sub(r"^Q:\s*", "", str(row["question"]))
                    examples.append(Example(question, 0, split, f"bipia-{task}-question", "question", group))
    return examples


def attack_strings(injection: Path) -> list[Example]:
    """BIPIA's attack instructions alone: the segment the document head must learn to spot."""
    examples = []
    for split in SPLITS:
        for kind, attacks in bipia_attacks(injection, split).items():
            for category, attack in attacks:
                group = f"bipia-attack-{split}-{category}"
                examples.append(Example(attack, 1, split, f"bipia-{kind}-attack", "document", group, category, attack))
    return examples


def planted_passages(
    passages: list[Example], attacks: dict[Split, list[tuple[str, str]]], seed: int, per_source: int = 150
) -> list[Example]:
    """Our kind of documents (knowledge-base passages, READMEs) with one attack of their split planted:
    up to `per_source` training passages per source, every test passage."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    chosen = []
    for source in sorted({e.source for e in passages}):
        train = [e for e in passages if e.source == source and e.split == "train"]
        chosen += rng.sample(train, min(per_source, len(train)))
        chosen += [e for e in passages if e.source == source and e.split == "test"]
    examples = []
    for e in chosen:
        category, attack = rng.choice(attacks[e.split])
        planted = plant(e.text, attack, rng)
        examples.append(Example(planted, 1, e.split, f"{e.source}-planted", "document", e.group, category, attack))
    return examples


def sample_passages(words_per_passage: int = 160) -> list[Example]:
    examples = []
    for file in scan(sample_knowledge_dir()):
        for piece in _passages(parse(file, read_bytes(file)).text, words_per_passage):
            examples.append(Example(piece, 0, _bucket(file.source), "sample-kb", "document", f"kb-{file.source}"))
    return examples


def _passages(text: str, words: int) -> list[str]:
    out, lines = [], []
    for line in [*text.splitlines(), None]:
        if line is not None:
            lines.append(line)
        if lines and (line is None or sum(len(x.split()) for x in lines) >= words):
            if piece := "\n".join(lines).strip():
                out.append(piece)
            lines = []
    return out


def readme_packages(path: Path | None = None) -> frozenset[str]:
    """The distributions whose READMEs are training data (evals/training/readme_packages.yaml)."""
    file = path or Path(str(resources.files("evals").joinpath("training/readme_packages.yaml")))
    return frozenset(str(name) for name in yaml.safe_load(file.read_text(encoding="utf-8"))["packages"])


def dependency_readmes(per_package: int = 4, words_per_passage: int = 160) -> list[Example]:
    """The READMEs of the installed Python dependencies: technical documentation full of instructions
    to human readers ("use the following code", "run this command"), the content a knowledge base
    holds. Passages that quote an attack (the heuristics fire) are left out: their label is moot.

    Only the listed distributions: a new dependency would otherwise change the data, and with it
    the held-out split the stored figures were measured on. Their pinned versions fix the texts."""
    from importlib import metadata

    wanted = readme_packages()  # never our own README: it is not a dependency, and it discusses attacks
    examples: list[Example] = []
    seen: set[str] = set()
    for dist in sorted(metadata.distributions(), key=lambda d: str(d.metadata["Name"]).lower()):
        name = str(dist.metadata["Name"]).lower()
        if name in seen or name not in wanted:
            continue  # the same distribution found twice on the path (an egg-info in the working folder)
        seen.add(name)
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""  # type: ignore[attr-defined]
        for piece in _passages(str(body), words_per_passage)[:per_package]:
            if len(piece.split()) >= 40 and not heuristic_categories(piece):
                examples.append(Example(piece, 0, _bucket(name), "readmes", "document", f"readme-{name}"))
    return examples


def training_questions(path: Path | None = None, seed: int = 7) -> list[Example]:
    file = path or Path(str(resources.files("evals").joinpath("training/benign_questions.yaml")))
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    examples = []
    for n, question in enumerate(data["questions"]):
        group = f"de-question-{n}"
        examples.append(Example(str(question), 0, _bucket(group), "de-questions", "question", group))
    for n, template in enumerate(data["templates"]):
        group = f"de-template-{n}"
        examples += [
            Example(t, 0, _bucket(group, 3), "de-templates", "question", group) for t in _expand(template, rng)
        ]
    return examples


def _expand(template: dict[str, object], rng: random.Random) -> list[str]:
    slots = dict(template["slots"])  # type: ignore[call-overload]
    names = list(slots)
    combos = list(itertools.product(*(slots[k] for k in names)))
    return [
        str(template["pattern"]).format(**dict(zip(names, combo, strict=True)))
        for combo in rng.sample(combos, min(TEMPLATE_CAP, len(combos)))
    ]


def training_instructions(path: Path | None = None, seed: int = 7) -> list[tuple[str, str]]:
    """Our written indirect-injection instructions (evals/training/), as (category, text); training only."""
    file = path or Path(str(resources.files("evals").joinpath("training/indirect_instructions.yaml")))
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    return [(f"meshpilot-{n}", text) for n, t in enumerate(data["templates"]) for text in _expand(t, rng)]


def golden_questions() -> list[Example]:
    return [
        Example(q.question, 0, _bucket(q.question), "golden-questions", "question", f"golden-{q.question}")
        for q in load_golden()
    ]


def build_examples(external: Path, seed: int = 7) -> list[Example]:
    injection = external / "injection"
    if not (injection / "cyberseceval").is_dir() or not (injection / "bipia").is_dir():
        raise UsageError(f"labelled injection data (cyberseceval/, bipia/) not found under {injection}")
    direct = cyberseceval(injection)
    # A direct injection planted in a document is an indirect one: the short training ones widen the
    # instructions the document head learns from (BIPIA's attack categories differ between its splits),
    # as do our written ones (lies about the document, phishing, exfiltration, hijacked answers).
    extra = [
        (f"cyberseceval/{e.subset}", e.text)
        for e in direct
        if e.kind == "question" and e.split == "train" and len(e.text.split()) <= 60
    ] + training_instructions(seed=seed)
    passages = [*sample_passages(), *dependency_readmes()]
    planted: dict[Split, list[tuple[str, str]]] = {
        "train": bipia_attacks(injection, "train")["text"] + extra,
        "test": bipia_attacks(injection, "test")["text"],
    }
    return [
        *direct,
        *bipia(injection, seed, extra),
        *attack_strings(injection),
        *passages,
        *planted_passages(passages, planted, seed),
        *training_questions(seed=seed),
        *golden_questions(),
    ]


def benign_questions(path: Path | None = None) -> list[str]:
    """The benign data-engineering test questions (evals/golden/benign_questions.yaml)."""
    file = path or Path(str(resources.files("evals").joinpath("golden/benign_questions.yaml")))
    return [str(q) for q in yaml.safe_load(file.read_text(encoding="utf-8"))["questions"]]


def _payload_label(piece: str, instruction: list[str], code: list[str]) -> int:
    """1 when the segment holds part of the planted instruction (a neighbouring fragment may be
    joined to it), -1 when it holds the attack's code, else 0."""
    if any(i in piece or piece in i for i in instruction):
        return 1
    return -1 if any(c in piece or piece in c for c in code) else 0


def segment_labeller(examples: list[Example]) -> Callable[[Example, list[str]], npt.NDArray[np.int8]]:
    """Labels for the segments of a document, for the document head: 1 instruction, 0 not, -1 unknown.
    A planted document's attack instruction is 1, its other segments 0 (the code a code attack carries
    is -1: it reads like any code); a CyberSecEval document's segments that no other document of its
    near-duplicate group shares are its injection (1), the shared ones 0; a CyberSecEval document that
    overloads its attack with filler is -1 throughout (its filler cannot be told from its attack)."""
    shared: dict[str, list[set[str]]] = {}
    for e in examples:
        if e.source == "cyberseceval" and e.kind == "document":
            shared.setdefault(e.group, []).append(set(segments(e.text)))

    def labels(e: Example, pieces: list[str]) -> npt.NDArray[np.int8]:
        if e.source == "cyberseceval":
            if e.subset.endswith("/overload_with_information"):
                return np.full(len(pieces), -1, dtype=np.int8)
            own = set(pieces)
            others = set().union(*(s for s in shared.get(e.group, []) if s != own))
            return np.array([int(p not in others) if others else 1 for p in pieces], dtype=np.int8)
        if e.payload:
            instruction = segments(e.payload.split("```")[0])
            code = [c for c in segments(e.payload) if c not in instruction]
            return np.array([_payload_label(p, instruction, code) for p in pieces], dtype=np.int8)
        return np.full(len(pieces), e.label, dtype=np.int8)

    return labels
