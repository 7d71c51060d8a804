"""Training and measuring the prompt-injection classifier (`meshpilot guard train`).

Data (../shared/external/injection, public and labelled): CyberSecEval prompt-injection inputs
(direct and indirect) and BIPIA's attack instructions as positives, also planted inside BIPIA's
benign e-mails and tables (indirect injection); BIPIA's benign contexts and questions, the bundled
knowledge base's passages and the golden questions as negatives. Splits: BIPIA's own train/test;
CyberSecEval by prompt id (every fifth held out); our passages and questions by hash. The threshold
is chosen on a validation slice of train for a false-positive rate <= 2 %; held-out figures use the
whole detector (heuristics + classifier), as the service runs it.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from evals.calibration import load_golden
from rag.documents import parse, read_bytes, scan
from rag.embeddings import Embedder
from rag.errors import UsageError
from rag.guards.injection import InjectionDetector, LinearModel
from rag.guards.normalize import normalise
from rag.samples import sample_knowledge_dir

MAX_WORDS = 120  # what fits MiniLM's window with room for a planted instruction


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    split: str  # train | test
    source: str
    indirect: bool = False


def _split_by_hash(text: str, test_share: int = 5) -> str:
    return "test" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % test_share == 0 else "train"


def _clip(text: str, words: int = MAX_WORDS) -> str:
    return " ".join(text.split()[:words])


def _plant(context: str, attack: str, rng: random.Random) -> str:
    words = _clip(context, MAX_WORDS - len(attack.split())).split()
    at = rng.randint(0, len(words))
    return " ".join([*words[:at], attack, *words[at:]])


def build_examples(external: Path, seed: int = 7) -> list[Example]:
    injection = external / "injection"
    if not injection.is_dir():
        raise UsageError(f"labelled injection data not found at {injection}")
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    examples: list[Example] = []
    for row in json.loads((injection / "cyberseceval" / "prompt_injection.json").read_text(encoding="utf-8")):
        split = "test" if int(row["prompt_id"]) % 5 == 0 else "train"
        indirect = row["injection_type"] == "indirect"
        examples.append(Example(_clip(row["user_input"], 200), 1, split, "cyberseceval", indirect))
    attacks: dict[str, list[str]] = {}
    for split in ("train", "test"):
        for kind in ("text", "code"):
            data = json.loads((injection / "bipia" / f"{kind}_attack_{split}.json").read_text(encoding="utf-8"))
            for items in data.values():
                # Alone, most BIPIA attacks are ordinary requests ("Translate this text"); they are
                # attacks only when planted in a document, so they are used planted (below).
                attacks.setdefault(split, []).extend(items)
        for task in ("email", "table", "code"):
            rows = [
                json.loads(x) for x in (injection / "bipia" / task / f"{split}.jsonl").read_text().splitlines() if x
            ]
            for row in rows:
                context = str(row["context"])
                examples.append(Example(_clip(context), 0, split, f"bipia-{task}"))
                if row.get("question"):
                    examples.append(Example(_clip(str(row["question"]), 60), 0, split, f"bipia-{task}-question"))
                if task != "code":  # code contexts carry their attack as code, covered by code attacks
                    planted = _plant(context, rng.choice(attacks[split]), rng)
                    examples.append(Example(planted, 1, split, f"bipia-{task}-planted", indirect=True))
    for file in scan(sample_knowledge_dir()):
        text = parse(file, read_bytes(file)).text
        words = text.split()
        for start in range(0, len(words), MAX_WORDS):
            piece = " ".join(words[start : start + MAX_WORDS])
            examples.append(Example(piece, 0, _split_by_hash(piece), "sample-kb"))
    for q in load_golden():
        examples.append(Example(q.question, 0, _split_by_hash(q.question), "golden-questions"))
    return examples


def benign_questions(path: Path | None = None) -> list[str]:
    from importlib import resources

    file = path or Path(str(resources.files("evals").joinpath("golden/benign_questions.yaml")))
    return [str(q) for q in yaml.safe_load(file.read_text(encoding="utf-8"))["questions"]]


def _fit(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], l2: float = 1e-3, steps: int = 3000
) -> tuple[npt.NDArray[np.float32], float]:
    """Class-balanced logistic regression by full-batch gradient descent (384 features: instant)."""
    pos = max(float(y.sum()), 1.0)
    neg = max(float(len(y) - y.sum()), 1.0)
    sample_w = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg)).astype(np.float32)
    w = np.zeros(x.shape[1], dtype=np.float32)
    b = 0.0
    lr = 2.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * sample_w
        w -= lr * ((x.T @ g) / len(y) + l2 * w)
        b -= lr * float(g.mean())
    return w.astype(np.float32), float(b)


def _rates(flags: list[bool], labels: list[int]) -> dict[str, float | int]:
    tp = sum(f and y for f, y in zip(flags, labels, strict=True))
    fp = sum(f and not y for f, y in zip(flags, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    return {
        "n": len(labels),
        "positives": pos,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / pos, 4) if pos else 0.0,
        "false_positive_rate": round(fp / neg, 4) if neg else 0.0,
    }


def _embed_cached(embedder: Embedder, texts: list[str], cache: Path | None) -> npt.NDArray[np.float32]:
    """Embeddings, reusing those of earlier runs (keyed by model and text) from `cache`."""
    keys = [hashlib.sha256(f"{embedder.model_id}|{t}".encode()).hexdigest() for t in texts]
    known: dict[str, npt.NDArray[np.float32]] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            known = {k: stored[k] for k in stored.files}
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        for i, vector in zip(missing, embedder.embed([texts[i] for i in missing]), strict=True):
            known[keys[i]] = vector
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **known)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return np.stack([known[k] for k in keys]).astype(np.float32)


def train(
    embedder: Embedder, external: Path, *, max_fpr: float = 0.02, seed: int = 7, cache: Path | None = None
) -> tuple[LinearModel, dict[str, Any]]:
    examples = build_examples(external, seed)
    vectors = _embed_cached(embedder, [normalise(e.text) for e in examples], cache)
    train_idx = [i for i, e in enumerate(examples) if e.split == "train"]
    test_idx = [i for i, e in enumerate(examples) if e.split == "test"]
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    rng.shuffle(train_idx)
    cut = len(train_idx) * 4 // 5
    fit_idx, val_idx = train_idx[:cut], train_idx[cut:]
    y = np.array([e.label for e in examples], dtype=np.float32)
    w, b = _fit(vectors[fit_idx], y[fit_idx])
    val_scores = 1 / (1 + np.exp(-(vectors[val_idx] @ w + b)))
    negatives = sorted(float(s) for s, i in zip(val_scores, val_idx, strict=True) if examples[i].label == 0)
    threshold = negatives[min(len(negatives) - 1, int(np.ceil(len(negatives) * (1 - max_fpr))))] + 1e-6
    # Refit on all of train with the chosen threshold.
    w, b = _fit(vectors[train_idx], y[train_idx])
    model = LinearModel(
        weights=w,
        bias=b,
        threshold=round(float(threshold), 6),
        embedding_model=embedder.model_id,
        metadata={
            "artifact": "injection-v1",
            "trained": date.today().isoformat(),
            "examples": {"train": len(train_idx), "test": len(test_idx)},
            "sources": sorted({e.source for e in examples}),
            "max_validation_fpr": max_fpr,
        },
    )
    detector = InjectionDetector(model)
    flags = [detector.check(examples[i].text, vectors[i]).flagged for i in test_idx]
    labels = [examples[i].label for i in test_idx]
    indirect = [(f, examples[i].label) for f, i in zip(flags, test_idx, strict=True) if examples[i].indirect]
    benign = benign_questions()
    benign_vectors = _embed_cached(embedder, benign, cache)
    benign_flags = [detector.check(q, v).flagged for q, v in zip(benign, benign_vectors, strict=True)]
    false_positives = sorted(
        {examples[i].source for f, i in zip(flags, test_idx, strict=True) if f and not examples[i].label}
    )
    report = {
        "held_out": _rates(flags, labels),
        "held_out_false_positive_sources": false_positives,
        "held_out_indirect": _rates([f for f, _ in indirect], [y for _, y in indirect]),
        "benign_data_engineering": {
            "n": len(benign),
            "flagged": sum(benign_flags),
            "flagged_questions": [q for q, f in zip(benign, benign_flags, strict=True) if f],
        },
        "threshold": model.threshold,
    }
    model.metadata["evaluation"] = report
    return model, report
