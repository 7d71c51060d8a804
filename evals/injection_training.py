"""Training and measuring the prompt-injection classifier (`meshpilot guard train`).

The data and its grouped splits are in evals/injection_data.py. Each head is a one-hidden-layer MLP
(torch, class-balanced loss) over the MiniLM embedding and the lexical features of
rag.guards.injection; five models are fitted on five group folds of the training split, their
out-of-fold scores set the threshold for a false-positive rate <= `MAX_FPR`, and the five are merged
into one wider MLP that averages their logits. Held-out figures are the whole detector (heuristics,
classifier, allowlist) as the service runs it, on the test split only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from evals.injection_data import Example, benign_questions, build_examples, segment_labeller
from rag.embeddings import Embedder
from rag.guards.injection import (
    ARTIFACT,
    LEXICAL_PATTERNS,
    InjectionDetector,
    InjectionModel,
    Kind,
    MlpHead,
    heuristic_categories,
    segments,
)

FOLDS = 5
# False-positive budgets on validation data, under the target's 0.05: a refused question costs a user
# more than a dropped passage, and a document's score (its highest segment) drifts on unseen documents.
MAX_FPR: dict[Kind, float] = {"question": 0.03, "document": 0.045}
Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FitOptions:
    hidden: int = 32
    epochs: int = 40
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seeds: int = 1  # models per fold, averaged
    smoothing: float = 0.05  # label smoothing: targets eps and 1 - eps keep the logits finite


def _fold(group: str) -> int:
    return int(hashlib.sha256(f"fold|{group}".encode()).hexdigest(), 16) % FOLDS


def fit_mlp(x: Array, y: Array, options: FitOptions, seed: int) -> tuple[Array, Array, Array, float]:
    """One hidden ReLU layer, class-balanced logistic loss, AdamW; returns (w1, b1, w2, b2)."""
    import torch

    torch.set_num_threads(1)  # faster than two here (docs: known offline pitfalls)
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y * (1 - 2 * options.smoothing) + options.smoothing)
    positives = max(float(y.sum()), 1.0)
    weights = torch.where(
        torch.from_numpy(y) == 1, len(y) / (2 * positives), len(y) / (2 * max(len(y) - positives, 1.0))
    )
    first, second = torch.nn.Linear(x.shape[1], options.hidden), torch.nn.Linear(options.hidden, 1)
    net = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    optimiser = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(options.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), options.batch):
            batch = order[start : start + options.batch]
            logits = net(xt[batch]).squeeze(1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt[batch], weight=weights[batch])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
    return (
        first.weight.detach().numpy().T.copy(),
        first.bias.detach().numpy().copy(),
        second.weight.detach().numpy()[0].copy(),
        float(second.bias.detach().numpy()[0]),
    )


def merge(parts: list[tuple[Array, Array, Array, float]], threshold: float) -> MlpHead:
    """The MLPs as one whose logit is the mean of theirs (hidden layers side by side)."""
    return MlpHead(
        w1=np.concatenate([p[0] for p in parts], axis=1).astype(np.float32),
        b1=np.concatenate([p[1] for p in parts]).astype(np.float32),
        w2=(np.concatenate([p[2] for p in parts]) / len(parts)).astype(np.float32),
        b2=float(np.mean([p[3] for p in parts])),
        threshold=threshold,
    )


def threshold_for(negative_scores: npt.NDArray[np.float64], max_fpr: float) -> float:
    """The lowest threshold that flags at most `max_fpr` of the negatives."""
    ordered = np.sort(negative_scores)
    k = min(len(ordered) - 1, int(np.ceil(len(ordered) * (1 - max_fpr))))
    return round(float(ordered[k]) + 1e-6, 6)


def rates(flags: list[bool], labels: list[int]) -> dict[str, float | int]:
    tp = sum(f and y == 1 for f, y in zip(flags, labels, strict=True))
    fp = sum(f and y == 0 for f, y in zip(flags, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    return {
        "n": len(labels),
        "positives": positives,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / positives, 4) if positives else 0.0,
        "false_positive_rate": round(fp / negatives, 4) if negatives else 0.0,
    }


class CachedEmbedder:
    """The embedder behind a text -> vector table kept on disk between runs (an uncached training run
    embeds about 25,000 segments: minutes on a laptop CPU)."""

    def __init__(self, embedder: Embedder, cache: Path | None) -> None:
        self.embedder, self.cache = embedder, cache
        self.model_id, self.dimension = embedder.model_id, embedder.dimension
        self.known: dict[str, Array] = {}
        if cache is not None and cache.exists():
            with np.load(cache) as stored:
                self.known = {k: stored[k] for k in stored.files}

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_id}|{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> Array:
        keys = [self._key(t) for t in texts]
        missing = dict(sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.known}.items()))
        if missing:
            self.known.update(zip(missing, self.embedder.embed(list(missing.values())), strict=True))
            if self.cache is not None:
                self.cache.parent.mkdir(parents=True, exist_ok=True)
                with self.cache.open("wb") as handle:
                    np.savez(handle, **self.known)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.known[k] for k in keys]).astype(np.float32)


class _Data:
    """Features and segment labels for both heads, computed once from the examples' embeddings."""

    def __init__(self, examples: list[Example], embedder: CachedEmbedder) -> None:
        self.examples = examples
        self.features = _features_of(embedder.model_id)
        self.questions = [e for e in examples if e.kind == "question"]
        documents = [e for e in examples if e.kind == "document"]
        pieces = [segments(e.text) or [e.text] for e in documents]
        embedder.embed([e.text for e in self.questions] + [p for ps in pieces for p in ps])  # one batch
        self.question_x = self.features.question_features(
            [e.text for e in self.questions], embedder.embed([e.text for e in self.questions])
        )
        label = segment_labeller(examples)
        self.documents = [
            (e, self.features.document_features(ps, embedder.embed(ps)), label(e, ps))
            for e, ps in zip(documents, pieces, strict=True)
        ]

    def rows(self, kind: Kind, keep: Callable[[Example], bool]) -> tuple[Array, Array]:
        if kind == "question":
            rows = [i for i, e in enumerate(self.questions) if keep(e)]
            return self.question_x[rows], np.array([self.questions[i].label for i in rows], dtype=np.float32)
        xs = [f[y >= 0] for e, f, y in self.documents if keep(e)]
        ys = [y[y >= 0].astype(np.float32) for e, f, y in self.documents if keep(e)]
        return np.concatenate(xs), np.concatenate(ys)

    def validation_scores(self, kind: Kind, head: MlpHead, keep: Callable[[Example], bool]) -> list[tuple[float, int]]:
        """(score, label) per question, or per document (its highest segment), that `keep` selects."""
        if kind == "question":
            rows = [i for i, e in enumerate(self.questions) if keep(e)]
            scores = head.probabilities(self.question_x[rows])
            return [(float(s), self.questions[i].label) for s, i in zip(scores, rows, strict=True)]
        return [
            (float(head.probabilities(f).max()), e.label)
            for e, f, _ in self.documents
            if keep(e) and _scored_as_document(e)
        ]


def _features_of(model_id: str) -> InjectionModel:
    """A model without weights: what computes the features (they depend on the patterns only)."""
    empty = MlpHead(np.zeros((1, 1), np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32), 0.0, 1.0)
    return InjectionModel(empty, empty, model_id, LEXICAL_PATTERNS, {})


def _scored_as_document(e: Example) -> bool:
    """Documents are measured as documents; BIPIA's bare attack strings only teach the segment head."""
    return e.kind == "document" and not e.source.endswith("-attack")


def _in_training(fold: int, inside: bool, e: Example) -> bool:
    return e.split == "train" and (_fold(e.group) == fold) == inside


def _fit_head(
    data: _Data, kind: Kind, options: FitOptions, max_fpr: float, seed: int
) -> tuple[MlpHead, dict[str, float | int]]:
    """Five fold models; their out-of-fold scores on the training split set the threshold."""
    parts, scored = [], []
    for k in range(FOLDS):
        x, y = data.rows(kind, partial(_in_training, k, False))
        fold = [fit_mlp(x, y, options, seed + k + 100 * j) for j in range(options.seeds)]
        parts += fold
        scored += data.validation_scores(kind, merge(fold, 1.0), partial(_in_training, k, True))
    scores = np.array([s for s, _ in scored])
    labels = [y for _, y in scored]
    threshold = threshold_for(scores[np.array(labels) == 0], max_fpr)
    return merge(parts, threshold), rates([bool(s >= threshold) for s in scores], labels)


def train(
    embedder: Embedder,
    external: Path,
    *,
    max_fpr: dict[Kind, float] | None = None,
    seed: int = 7,
    cache: Path | None = None,
    options: FitOptions | None = None,
) -> tuple[InjectionModel, dict[str, Any]]:
    examples = build_examples(external, seed)
    cached = CachedEmbedder(embedder, cache)
    data = _Data(examples, cached)
    options = options or FitOptions()
    max_fpr = max_fpr or MAX_FPR
    question, question_validation = _fit_head(data, "question", options, max_fpr["question"], seed)
    document, document_validation = _fit_head(data, "document", options, max_fpr["document"], seed)
    model = InjectionModel(
        question=question,
        document=document,
        embedding_model=embedder.model_id,
        lexical_patterns=LEXICAL_PATTERNS,
        metadata={
            "artifact": ARTIFACT,
            "trained": date.today().isoformat(),
            "examples": {
                kind: {s: sum(e.kind == kind and e.split == s for e in examples) for s in ("train", "test")}
                for kind in ("question", "document")
            },
            "sources": sorted({e.source for e in examples}),
            "max_validation_fpr": max_fpr,
            "fit": {"folds": FOLDS, "seed": seed, **options.__dict__},
            "validation": {"question": question_validation, "document": document_validation},
        },
    )
    report = evaluate(model, [e for e in examples if e.split == "test"], cached)
    model.metadata["evaluation"] = report
    return model, report


OUR_DOCUMENTS = ("sample-kb", "readmes")  # planted copies of these are our own construction, reported apart


def _public(e: Example) -> bool:
    """In the headline figures: every held-out benign text, and the attacks of the public data sets
    (CyberSecEval, BIPIA's attacks in BIPIA's contexts); not BIPIA's attacks planted in our documents."""
    return e.label == 0 or not e.source.endswith("-planted") or not e.source.startswith(OUR_DOCUMENTS)


def _direct_of_risk(risk: str, e: Example) -> bool:
    return e.kind == "question" and e.subset.startswith(risk)


def evaluate(
    model: InjectionModel, test: list[Example], embedder: Embedder, *, vector_only: bool = True
) -> dict[str, Any]:
    """The whole detector (heuristics, classifier, allowlist) as the service runs it: questions with
    their embedding, documents segment by segment; with `vector_only`, also documents scored on
    their own embedding only (what a caller without segment embeddings gets)."""
    detector = InjectionDetector(model)
    questions = [e for e in test if e.kind == "question"]
    documents = [e for e in test if _scored_as_document(e)]
    q_flags = detector.check_many([e.text for e in questions], embedder.embed([e.text for e in questions]))
    d_flags = detector.check_documents([e.text for e in documents], embedder.embed)
    flags = {id(e): v.flagged for e, v in zip(questions + documents, q_flags + d_flags, strict=True)}

    def measured(keep: Callable[[Example], bool]) -> dict[str, float | int]:
        picked = [e for e in questions + documents if keep(e)]
        return rates([flags[id(e)] for e in picked], [e.label for e in picked])

    def by_heuristics(examples: list[Example], kind: Kind) -> dict[str, float | int]:
        picked = [e for e in examples if _public(e)]
        return rates([bool(heuristic_categories(e.text, kind)) for e in picked], [e.label for e in picked])

    benign = benign_questions()
    benign_verdicts = detector.check_many(benign, embedder.embed(benign))
    by_source: dict[str, dict[str, int]] = {}
    for e in questions + documents:
        entry = by_source.setdefault(e.source, {"label": e.label, "n": 0, "flagged": 0})
        entry["n"] += 1
        entry["flagged"] += int(flags[id(e)])
    report: dict[str, Any] = {
        "held_out": measured(_public),
        "held_out_direct": measured(lambda e: e.kind == "question"),
        "held_out_indirect": measured(lambda e: e.kind == "document" and _public(e)),
        "held_out_our_documents": measured(lambda e: e.kind == "document" and e.source.startswith(OUR_DOCUMENTS)),
        "held_out_all": measured(lambda e: True),
        "held_out_heuristics_alone": {
            "direct": by_heuristics(questions, "question"),
            "indirect": by_heuristics(documents, "document"),
        },
        "held_out_direct_by_risk": {
            risk: measured(partial(_direct_of_risk, risk)) for risk in ("security-violating", "logic-violating")
        },
        "held_out_by_source": dict(sorted(by_source.items())),
        "benign_data_engineering": {
            "n": len(benign),
            "flagged": sum(v.flagged for v in benign_verdicts),
            "flagged_questions": [q for q, v in zip(benign, benign_verdicts, strict=True) if v.flagged],
        },
        "thresholds": {"question": model.question.threshold, "document": model.document.threshold},
        "validation": model.metadata.get("validation", {}),
    }
    if vector_only:
        public = [e for e in documents if _public(e)]
        whole = embedder.embed([e.text for e in public])
        w_flags = [detector.check_document(e.text, v).flagged for e, v in zip(public, whole, strict=True)]
        report["held_out_indirect_document_vector_only"] = rates(w_flags, [e.label for e in public])
    return report
