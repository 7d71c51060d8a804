"""Prompt-injection detection: phrase heuristics plus a small classifier on the text's embedding.

Threat model: a user (direct) or a document the service retrieves (indirect) tries to make the
model drop its instructions, adopt another role, reveal its system prompt or secrets, or run an
attacker's task, possibly disguised (encodings, homoglyphs, zero-width characters, other languages).
Heuristics catch the well-known phrasings in every reading of the text (rag/guards/normalize.py);
a hit is final. The classifier catches paraphrases: two one-hidden-layer MLPs over the MiniLM
embedding plus cheap lexical features, one for questions and one for document segments (an
instruction planted in a document is scored on its own sentence, against the rest of the document),
trained on labelled public data by `meshpilot guard train` and versioned in rag/guards/artifacts/.
A question's embedding is the one retrieval computes anyway. An allowlist of benign data-engineering
phrasings ("ignore nulls", "drop column", "override the SLO") keeps the classifier from flagging
them; it never overrides a heuristic hit. Method and measured figures: docs/guards.md.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml

from rag.errors import MeshpilotError
from rag.guards.normalize import normalise, views

log = logging.getLogger("meshpilot.guards")
ARTIFACT = "injection-v2"
FORMAT = "injection-mlp"  # v2's weights: two MlpHeads in one .npz
Kind = Literal["question", "document"]

_PATTERNS: dict[str, list[str]] = {
    "prompt_injection": [
        r"\b(ignore|disregard|forget|skip|bypass|override)\b.{0,40}\b(previous|prior|above|earlier|preceding|"
        r"all|any|your|system|original)\b.{0,30}\b(instructions?|rules|directions|prompts?|guidelines|"
        r"directives|constraints|programming)\b",
        r"\bnew (instructions|rules|task)\s*[:\-]",
        r"\b(from now on|henceforth),? you (are|will|must)\b",
        r"\byou are (now|no longer)\b.{0,40}\b(ai|assistant|model|bot|dan|free|unrestricted|jailbroken)\b",
        r"\b(act|pretend|behave) as (an? )?(unrestricted|unfiltered|jailbroken|evil|dan)\b",
        r"\b(god|dan|jailbreak) mode\b|\boverride mode\b|<\s*(system|developer|admin)[ _]mode\s*>",
        r"\b(enabl|activat|enter)\w* (the )?developer mode\b|\bdeveloper mode (enabled|activated|on)\b",
        r"\bdo anything now\b",
        r"\b(stop|cease) following (your|the) (rules|instructions|guidelines)\b",
        r"\binstead,? (say|respond|reply|answer|output|print)\b",
        r"ignora (todas )?(las )?instrucciones (anteriores|previas)",
        r"ignorez? (toutes )?(les )?(instructions|consignes) (precedentes|précédentes|ci-dessus)",
        r"ignorier(e|en sie)? (alle )?(vorherigen|bisherigen|obigen) (anweisungen|instruktionen)",
        r"\b(ignore|disregard|forget) (all of |everything )?(the |what is |what's )?(text |words )?above\b",
        r"\b(ignore|disregard|forget) (everything|all) (that )?you('ve| have)? (been|were) (told|instructed)\b",
        r"\b(without|no|free of) (any )?(ethical|moral|content) (guidelines|restrictions|filters|limits)\b",
        r"\b(unfiltered|uncensored) (ai|assistant|model|mode|responses?)\b",
        r"\bstay in character\b",
        r"ignora (tutte )?le istruzioni precedenti",
        r"ignore (todas )?as instru[cç][oõ]es anteriores",
        r"negeer (alle )?(vorige|eerdere) (instructies|aanwijzingen)",
        r"zignoruj (wszystkie )?(poprzednie|wcześniejsze) (instrukcje|polecenia)",
        r"önceki (tüm )?talimatları (yok say|görmezden gel)",  # noqa: RUF001 - Turkish dotless i
        r"игнорир\w* (все )?(предыдущие|прежние) (инструкции|указания)",
        r"забудь(те)? (все )?(предыдущие|прежние) (инструкции|указания)",
        r"αγνοήστε (όλες )?τις προηγούμενες οδηγίες|αγνόησε (όλες )?τις προηγούμενες οδηγίες",
        r"忽略(之前|以上|前面|以前)的?(所有)?(指令|指示|说明)",
        r"(以前|前|これまで)の(すべての)?指示を無視",
        r"이전 (지시|명령|지침)\w*(을|를)? 무시",
        r"पिछले निर्देशों (की अनदेखी|को अनदेखा|को नजरअंदाज)",
        r"تجاهل (جميع )?التعليمات السابقة",
    ],
    "system_prompt_extraction": [
        r"\b(reveal|show|print|repeat|output|display|leak|dump|tell me|give me|what (is|are|was))\b.{0,30}"
        r"\b(system|initial|hidden|original|secret|developer) (prompt|instructions|message|rules)\b",
        r"\brepeat (everything|all|the text|the words) (above|before|so far)\b",
        r"\b(your|the) (instructions|prompt) (verbatim|word for word)\b",
    ],
    "encoded_payload": [],  # set when a decoded payload (base64, hex, rot13) is itself flagged
}
# Documents only: a document that speaks to the model reading it. A user may well say "in your answer,
# cite the runbook"; a runbook, an e-mail or a table has no business saying it.
_DOCUMENT_PATTERNS: dict[str, list[str]] = {
    "instruction_to_model": [
        r"\b(if|when) you('re| are) an? (ai|llm|language model|assistant|chatbot|bot)\b",
        r"\b(note|message|instructions?|attention|reminder) (to|for) (the |any |all )?"
        r"(ai|llm|language model|assistant|chatbot|bot|model)s?\b",
        r"\b(ai|llm|assistant|chatbot|language model)s? (reading|processing|summari[sz]ing|answering) (this|these)\b",
        r"\b(in|to|into|at the (end|start|beginning) of|throughout) your (response|answer|reply)\b",
        r"\b(modify|change|format|end|start|begin|translate|encode|encrypt|reverse) your (response|answer|reply)\b",
    ],
}


class _Pattern:
    """A pattern searched behind a looser copy of itself without its leading word boundary: that copy
    begins with its alternatives, so the regex engine skips to the positions where one could start
    instead of trying every position. It matches whatever the pattern matches, so the result is the
    same; measured on ingested chunks, 1.7x faster over all the patterns below."""

    __slots__ = ("_loose", "_strict")

    def __init__(self, source: str) -> None:
        self._strict = re.compile(source)
        self._loose = re.compile(source[2:]) if source.startswith(r"\b") else None

    def search(self, text: str) -> bool:
        if self._loose is not None and self._loose.search(text) is None:
            return False
        return self._strict.search(text) is not None


_COMPILED = {cat: [_Pattern(p) for p in pats] for cat, pats in _PATTERNS.items()}
_COMPILED_DOCUMENT = _COMPILED | {cat: [_Pattern(p) for p in pats] for cat, pats in _DOCUMENT_PATTERNS.items()}


# What the classifier sees besides the embedding: cheap signs of text addressed to a model, on the
# normalised text. Stored with each artifact (so retraining, not a code edit, changes what a model reads).
LEXICAL_PATTERNS = (
    r"\byour (response|answer|reply|output|summary|message|solution|implementation|code)\b",
    r"\b(ignore|disregard|forget|override|bypass|instead)\b",
    r"\b(instructions?|prompt|directives?|guidelines|rules)\b",
    r"\b(you are|you're|act as|pretend|imagine|role|hypothetical|scenario)\b",
    r"\b(password|secret|passcode|credentials?|api key)\b",
    r"\bmode\b|<\s*system|\bsystem prompt\b",
    r"\b(base64|base32|hex|hexadecimal|rot13|binary|morse|cipher|caesar|reverse|encode|decode|emojis?)\b",
    r"\b(ai|assistant|chatbot|language model|llm|gpt)\b",
    r"^(please )?(say|state|print|output|respond|reply|write|include|add|insert|append|provide|translate|"
    r"summari[sz]e|tell|give|list|explain|describe|create|generate|modify|use|incorporate|integrate)\b",
    r"^(please )?(suggest|recommend|determine|analy[sz]e|show|help|find|compose|draft|calculate|compare|convert|"
    r"classify|name|identify|answer|rewrite|rephrase|encode|encrypt|replace|ensure|utili[sz]e|enhance|merge|"
    r"embed|make|let's|imagine|pretend|act|ignore|forget|disregard)\b",
    r"^(what|who|whom|how|why|when|where|which|is|are|can|could|would|do|does|did)\b.*\?$",
    r"\b(me|my|i)\b",
    r"https?://|www\.",
)
EXTRA_FEATURES = ("non_ascii_letter_share", "question_mark", "log_words")


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float
    categories: list[str] = field(default_factory=list)
    segment: str = ""  # documents: the segment that scored highest (the one to show or neutralise)


def _sigmoid(logits: Any) -> Any:
    """The logistic function without overflow warnings for large logits."""
    return 0.5 * (1.0 + np.tanh(0.5 * logits))


@dataclass(frozen=True)
class LinearModel:
    """injection-v1: logistic regression over an L2-normalised embedding (loaded for compatibility)."""

    weights: npt.NDArray[np.float32]
    bias: float
    threshold: float
    embedding_model: str
    metadata: dict[str, Any]

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[0])

    def probability(self, vector: npt.NDArray[np.float32]) -> float:
        return float(_sigmoid(np.float64(np.dot(self.weights, vector)) + self.bias))


@dataclass(frozen=True)
class MlpHead:
    """One hidden ReLU layer over a feature row; `threshold` applies to the sigmoid of its output."""

    w1: npt.NDArray[np.float32]
    b1: npt.NDArray[np.float32]
    w2: npt.NDArray[np.float32]
    b2: float
    threshold: float

    def probabilities(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        hidden = np.maximum(features @ self.w1 + self.b1, 0.0)
        return np.asarray(_sigmoid(np.asarray(hidden @ self.w2 + self.b2, dtype=np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class InjectionModel:
    """injection-v2: a question head (a user's message: embedding + lexical features) and a document
    head (each segment of a document: embedding, its departure from the rest of the document, lexical
    features); each with the threshold chosen on validation data for its false-positive budget."""

    question: MlpHead
    document: MlpHead
    embedding_model: str
    lexical_patterns: tuple[str, ...]
    metadata: dict[str, Any]

    @property
    def threshold(self) -> float:
        return self.question.threshold

    @property
    def dimension(self) -> int:
        """The embedding's dimension (the question head reads it plus the lexical features)."""
        return int(self.question.w1.shape[0]) - len(self.lexical_patterns) - len(EXTRA_FEATURES)

    def lexical(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        compiled = _compile(self.lexical_patterns)
        rows = []
        for text in texts:
            plain = normalise(text)
            rows.append(
                [1.0 if p.search(plain) else 0.0 for p in compiled]
                + [
                    _non_ascii_letter_share(plain),
                    1.0 if "?" in plain else 0.0,
                    float(np.log1p(len(plain.split())) / 5),
                ]
            )
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(compiled) + len(EXTRA_FEATURES))

    def question_features(self, texts: Sequence[str], vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.concatenate([np.asarray(vectors, dtype=np.float32), self.lexical(texts)], axis=1)

    def document_features(self, pieces: Sequence[str], vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One row per segment of ONE document: its vector, how it departs from the mean of the other
        segments (a planted instruction is off-topic for its document), the cosine of the two, lexical."""
        v = np.asarray(vectors, dtype=np.float32)
        n = len(v)
        others = (v.sum(axis=0, keepdims=True) - v) / max(n - 1, 1) if n > 1 else v.copy()
        return self._segment_features(pieces, v, others)

    def single_segment_features(
        self, texts: Sequence[str], vectors: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """`document_features` of many one-segment documents at once: row i is what it gives for
        ([texts[i]], vectors[i:i+1]), with no other segment to depart from but the text's own direction."""
        v = np.asarray(vectors, dtype=np.float32)
        return self._segment_features(texts, v, v.copy())

    def _segment_features(
        self, pieces: Sequence[str], v: npt.NDArray[np.float32], others: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        others /= np.linalg.norm(others, axis=1, keepdims=True) + 1e-6
        cosine = (v * others).sum(axis=1, keepdims=True)
        return np.concatenate([v, v - others, cosine, self.lexical(pieces)], axis=1)

    def probability(self, vector: npt.NDArray[np.float32], text: str = "") -> float:
        """The question head's probability (the interface of LinearModel, plus the text it reads)."""
        return float(self.question.probabilities(self.question_features([text], vector.reshape(1, -1)))[0])


Model = InjectionModel | LinearModel


def _non_ascii_letter_share(text: str) -> float:
    if text.isascii():  # most texts: no per-character loop
        return 0.0
    letters = [c for c in text if c.isalpha()]
    return sum(not c.isascii() for c in letters) / max(1, len(letters))


@lru_cache(maxsize=8)
def _compile(patterns: tuple[str, ...]) -> list[_Pattern]:
    return [_Pattern(p) for p in patterns]


def artifact_dir() -> Path:
    return Path(str(resources.files("rag.guards").joinpath("artifacts")))


def artifact_files(name: str = ARTIFACT, directory: Path | None = None) -> list[Path]:
    folder = directory or artifact_dir()
    return [folder / f"{name}.json", folder / f"{name}.npz" if name != "injection-v1" else folder / f"{name}.npy"]


def _head(arrays: Any, prefix: str, threshold: float) -> MlpHead:
    return MlpHead(
        w1=arrays[f"{prefix}_w1"].astype(np.float32),
        b1=arrays[f"{prefix}_b1"].astype(np.float32),
        w2=arrays[f"{prefix}_w2"].astype(np.float32),
        b2=float(arrays[f"{prefix}_b2"]),
        threshold=threshold,
    )


def load_model(name: str = ARTIFACT, directory: Path | None = None, *, verify: bool = True) -> Model | None:
    """The named artifact (injection-v2 by default; injection-v1 still loads), or None when absent.
    A present but unreadable or inconsistent artifact is an error, never a silently weaker guard.
    `verify`: its files must have the digests pinned in rag/guards/artifacts.sha256 (supply chain);
    only a freshly trained candidate, before it is pinned, is loaded without."""
    meta_path, arrays_path = artifact_files(name, directory)
    if not meta_path.exists() or not arrays_path.exists():
        return None
    if verify:
        from rag.guards.integrity import verify as verify_pins

        verify_pins([meta_path, arrays_path])
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        if metadata.get("format") != FORMAT:
            return LinearModel(
                weights=np.load(arrays_path).astype(np.float32),
                bias=float(metadata["bias"]),
                threshold=float(metadata["threshold"]),
                embedding_model=str(metadata["embedding_model"]),
                metadata=metadata,
            )
        with np.load(arrays_path) as arrays:
            model = InjectionModel(
                question=_head(arrays, "question", float(metadata["thresholds"]["question"])),
                document=_head(arrays, "document", float(metadata["thresholds"]["document"])),
                embedding_model=str(metadata["embedding_model"]),
                lexical_patterns=tuple(metadata["lexical_patterns"]),
                metadata=metadata,
            )
        width, dims = len(model.lexical_patterns) + len(EXTRA_FEATURES), int(metadata["dimension"])
        if model.dimension != dims or model.document.w1.shape[0] != 2 * dims + 1 + width:
            raise ValueError("weights do not match the embedding dimension and lexical features")
    except (OSError, KeyError, ValueError, TypeError, re.error) as exc:
        raise MeshpilotError(f"injection classifier artifact {meta_path.parent / name} is unusable: {exc}") from exc
    return model


def save_model(model: Model, name: str | None = None, directory: Path | None = None) -> list[Path]:
    """Write the artifact (JSON metadata + weights); returns the files written."""
    folder = directory or artifact_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, LinearModel):
        name = name or "injection-v1"
        meta_path, arrays_path = artifact_files(name, folder)
        np.save(arrays_path, model.weights.astype(np.float32))
        meta = {**model.metadata, "bias": model.bias, "threshold": model.threshold}
    else:
        name = name or ARTIFACT
        meta_path, arrays_path = artifact_files(name, folder)
        heads = {"question": model.question, "document": model.document}
        arrays = {f"{k}_{p}": getattr(h, p) for k, h in heads.items() for p in ("w1", "b1", "w2")}
        arrays |= {f"{k}_b2": np.float32(h.b2) for k, h in heads.items()}
        with arrays_path.open("wb") as handle:
            np.savez(handle, **arrays)
        meta = {
            **model.metadata,
            "format": FORMAT,
            "thresholds": {k: h.threshold for k, h in heads.items()},
            "lexical_patterns": list(model.lexical_patterns),
            "extra_features": list(EXTRA_FEATURES),
            "dimension": int(model.question.w1.shape[0]) - len(model.lexical_patterns) - len(EXTRA_FEATURES),
        }
    meta["embedding_model"] = model.embedding_model
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [meta_path, arrays_path]


_SEGMENT_BREAK = re.compile(r"\n\s*|(?<=[.!?\u3002\uff01\uff1f])\s+|<!--|-->|\|(?=[A-Z_]{3,}:)")
SEGMENT_WORDS = 40


def segments(text: str, max_words: int = SEGMENT_WORDS) -> list[str]:
    """The pieces a document is scored by: its lines and sentences, fragments of fewer than four words
    (a heading) joined to the next piece, which is also kept alone; pieces longer than `max_words` cut
    into half-overlapping windows. An instruction planted in a long document is diluted in the
    document's embedding, not in its own."""
    pieces: list[str] = []
    carry = ""
    for raw in _SEGMENT_BREAK.split(text):
        if not any(c.isalnum() for c in raw):
            continue  # fences, rules, separators: nothing to read
        piece = f"{carry} {raw.strip()}".strip()
        if len(piece.split()) < 4:
            carry = piece
            continue
        # A heading glued to an instruction must not hide it: the piece is also scored on its own.
        alone = [raw.strip()] if carry and len(raw.split()) >= 4 else []
        carry = ""
        for text in [piece, *alone]:
            words = text.split()
            step = max_words // 2
            windows = range(0, len(words) - step, step) if len(words) > max_words else [0]
            pieces.extend(" ".join(words[i : i + max_words]) for i in windows)
    if carry:
        pieces.append(carry)
    return pieces


@lru_cache(maxsize=1)
def allowlist() -> list[re.Pattern[str]]:
    data = yaml.safe_load(resources.files("rag.guards").joinpath("allowlist.yaml").read_text(encoding="utf-8"))
    return [re.compile(p) for p in data["benign_patterns"]]


def heuristic_categories(text: str, kind: Kind = "question") -> list[str]:
    """Categories whose patterns match the text or any payload decoded from it (for a document, also
    the patterns of a text that addresses the model reading it)."""
    readings = views(text)
    found: list[str] = []
    for i, reading in enumerate(readings):
        if i == 1 and reading == readings[0]:
            continue  # no look-alike letters: the second reading is the first (most texts; half the scans)
        for category, patterns in (_COMPILED_DOCUMENT if kind == "document" else _COMPILED).items():
            if any(p.search(reading) for p in patterns):
                found.append(category if i <= 1 else "encoded_payload")  # 0, 1: the text itself
                if i > 1 and category not in found:
                    found.append(category)
    return list(dict.fromkeys(found))


Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


class InjectionDetector:
    """Heuristics first (a hit is final), then the classifier on the embedding retrieval computed.

    `check` reads a user's message (`kind="document"`: a retrieved text, see `check_document`);
    `check_many` and `check_documents` do the same for batches."""

    def __init__(self, model: Model | None = None) -> None:
        self.model = model
        self._warned = False

    @classmethod
    def default(cls) -> InjectionDetector:
        return cls(load_model())

    def check(self, text: str, vector: npt.NDArray[np.float32] | None = None, kind: Kind = "question") -> Verdict:
        if kind == "document":
            return self.check_document(text, vector)
        return self.check_many([text], None if vector is None else np.asarray(vector).reshape(1, -1))[0]

    def check_many(self, texts: Sequence[str], vectors: npt.NDArray[np.float32] | None = None) -> list[Verdict]:
        """Questions in a batch: one matrix product for the classifier."""
        found = [heuristic_categories(t) for t in texts]
        scores = [0.0] * len(texts)
        model = self._model_for(vectors)
        if model is not None and vectors is not None and len(texts):
            if isinstance(model, LinearModel):
                scores = [model.probability(v) for v in vectors]
            else:
                scores = [float(s) for s in model.question.probabilities(model.question_features(texts, vectors))]
        threshold = model.threshold if model is not None else 1.01
        return [self._verdict(t, c, s, threshold) for t, c, s in zip(texts, found, scores, strict=True)]

    def check_document(
        self, text: str, vector: npt.NDArray[np.float32] | None = None, *, embed: Embed | None = None
    ) -> Verdict:
        """A retrieved or ingested text. With `embed` (e.g. `embedder.embed`) every segment is scored
        and the highest counts; with only the document's `vector`, the document is one segment."""
        if embed is not None:
            return self.check_documents([text], embed)[0]
        found = heuristic_categories(text, "document")
        if found:
            return self._heuristic_document(text, found)
        model = None if vector is None else self._model_for(np.asarray(vector))
        if model is None or vector is None:
            return Verdict(False, 0.0, [])
        if isinstance(model, LinearModel):  # v1: one head for both kinds
            return self.check(text, vector)
        return self._scored_document(model, [text], np.asarray(vector, dtype=np.float32).reshape(1, -1))

    def check_chunks(self, texts: Sequence[str], vectors: npt.NDArray[np.float32] | None) -> list[Verdict]:
        """`check_document(texts[i], vectors[i])` for every i, the classifier in one matrix product."""
        model = None if vectors is None or not len(texts) else self._model_for(np.asarray(vectors))
        if vectors is None or not isinstance(model, InjectionModel):
            return [self.check_document(t, None if vectors is None else vectors[i]) for i, t in enumerate(texts)]
        found = [heuristic_categories(t, "document") for t in texts]
        rest = [i for i, categories in enumerate(found) if not categories]
        scores: dict[int, float] = {}
        if rest:
            rows = np.asarray(vectors, dtype=np.float32)[rest]
            features = model.single_segment_features([texts[i] for i in rest], rows)
            scores = dict(zip(rest, model.document.probabilities(features).tolist(), strict=True))
        verdicts = []
        for i, text in enumerate(texts):
            if found[i]:
                verdicts.append(self._heuristic_document(text, found[i]))
                continue
            verdicts.append(self._scored(text, scores[i], model.document.threshold))
        return verdicts

    def check_documents(self, texts: Sequence[str], embed: Embed) -> list[Verdict]:
        """Documents in a batch, every segment scored; the segments of all texts are embedded in one call."""
        found = [heuristic_categories(t, "document") for t in texts]
        model = self.model
        if not isinstance(model, InjectionModel):
            return [self._heuristic_document(t, c) for t, c in zip(texts, found, strict=True)]
        pieces = [segments(t) or [t] if not c else [] for t, c in zip(texts, found, strict=True)]
        flat = [p for ps in pieces for p in ps]
        vectors = embed(flat) if flat else np.zeros((0, model.dimension), dtype=np.float32)
        if self._model_for(vectors) is None:
            return [self._heuristic_document(t, c) for t, c in zip(texts, found, strict=True)]
        verdicts, start = [], 0
        for text, categories, ps in zip(texts, found, pieces, strict=True):
            if categories:
                verdicts.append(self._heuristic_document(text, categories))
                continue
            verdicts.append(self._scored_document(model, ps, vectors[start : start + len(ps)]))
            start += len(ps)
        return verdicts

    @staticmethod
    def _heuristic_document(text: str, categories: list[str]) -> Verdict:
        """A document's heuristic verdict, naming its first segment that the heuristics flag alone."""
        if not categories:
            return Verdict(False, 0.0, [])
        hit = next((p for p in segments(text) if heuristic_categories(p, "document")), "")
        return Verdict(True, 1.0, categories, hit)

    def _model_for(self, vectors: npt.NDArray[np.float32] | None) -> Model | None:
        """The classifier, unless the vectors come from an embedder of another dimension than the one
        it was trained on (then the heuristics alone decide, and the mismatch is logged once)."""
        if self.model is None or vectors is None:
            return self.model
        expected = self.model.dimension
        if vectors.shape[-1] != expected:
            if not self._warned:
                log.warning(
                    "injection classifier skipped: vectors of %s dimensions, trained on %s (%s)",
                    vectors.shape[-1],
                    expected,
                    self.model.embedding_model,
                )
                self._warned = True
            return None
        return self.model

    def _scored_document(self, model: InjectionModel, pieces: list[str], vectors: npt.NDArray[np.float32]) -> Verdict:
        scores = model.document.probabilities(model.document_features(pieces, vectors))
        top = int(np.argmax(scores))
        return self._scored(pieces[top], float(scores[top]), model.document.threshold)

    @classmethod
    def _scored(cls, segment: str, score: float, threshold: float) -> Verdict:
        """A document's classifier verdict, naming the segment it was taken on."""
        verdict = cls._verdict(segment, [], score, threshold)
        return Verdict(verdict.flagged, verdict.score, verdict.categories, segment)

    @staticmethod
    def _verdict(text: str, categories: list[str], score: float, threshold: float) -> Verdict:
        if categories:
            return Verdict(True, 1.0, categories)
        if score >= threshold and any(p.search(normalise(text)) for p in allowlist()):
            return Verdict(False, round(min(score, threshold - 1e-3), 4), ["allowlisted"])
        flagged = score >= threshold
        return Verdict(flagged, round(score, 4), ["prompt_injection"] if flagged else [])
