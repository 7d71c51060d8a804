"""Calibrating the extractive answerer's refusal thresholds on the golden questions.

For every golden question we retrieve as a caller who may read the answer (unanswerable questions:
as a caller who may read everything, the hardest case) and record the two support signals the
answerer uses: the best passage's cosine similarity and the best sentence's question coverage.
A grid search over the mix of the two and the threshold finds the highest accuracy (answerable ->
grounded, unanswerable -> refused); among ties, the middle of the widest run of thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rag.answers import DENSE_SHARE, MIN_SUPPORT, support_features, support_score
from rag.retrieval import HybridRetriever


@dataclass(frozen=True)
class GoldenQuestion:
    id: str
    question: str
    answerable: bool
    groups: list[str]
    product: str | None
    source: str | None
    quote: str | None
    answer: str | None


def golden_path() -> Path:
    return Path(str(resources.files("evals").joinpath("golden/sample_kb.yaml")))


def load_golden(path: Path | None = None) -> list[GoldenQuestion]:
    data = yaml.safe_load((path or golden_path()).read_text(encoding="utf-8"))
    return [
        GoldenQuestion(
            id=q["id"],
            question=q["question"],
            answerable=bool(q["answerable"]),
            groups=list(q.get("groups") or []),
            product=q.get("product"),
            source=q.get("source"),
            quote=q.get("quote"),
            answer=q.get("answer"),
        )
        for q in data["questions"]
    ]


ALL_GROUPS = ["finance", "sales", "data-platform", "sre"]


def features(
    retriever: HybridRetriever, questions: list[GoldenQuestion], products: list[str] | None = None
) -> list[dict[str, Any]]:
    rows = []
    for q in questions:
        groups = q.groups if q.answerable else ALL_GROUPS
        passages = retriever.retrieve(q.question, groups=groups, products=products, check=False).passages
        dense, candidates = support_features(q.question, passages)
        coverage = candidates[0].coverage if candidates else 0.0
        rows.append({"id": q.id, "answerable": q.answerable, "dense": round(dense, 4), "coverage": round(coverage, 4)})
    return rows


def _accuracy(rows: list[dict[str, Any]], share: float, threshold: float) -> float:
    right = sum((support_score(r["dense"], r["coverage"], share) >= threshold) == r["answerable"] for r in rows)
    return float(right) / len(rows)


def calibrate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    shares = [round(0.05 * i, 2) for i in range(21)]
    thresholds = [round(0.005 * i, 3) for i in range(200)]
    scored = [(_accuracy(rows, a, t), a, t) for a in shares for t in thresholds]
    best = max(s[0] for s in scored)
    ties = [(a, t) for acc, a, t in scored if acc == best]
    # Most of the best region lies at one share; take the middle threshold there (least sensitive).
    by_share: dict[float, list[float]] = {}
    for a, t in ties:
        by_share.setdefault(a, []).append(t)
    share = max(by_share, key=lambda a: (len(by_share[a]), a))
    threshold = sorted(by_share[share])[len(by_share[share]) // 2]
    return {
        "questions": len(rows),
        "answerable": sum(r["answerable"] for r in rows),
        "best_accuracy": round(best, 4),
        "suggested": {"dense_share": share, "min_support": threshold},
        "current": {"dense_share": DENSE_SHARE, "min_support": MIN_SUPPORT},
        "current_accuracy": round(_accuracy(rows, DENSE_SHARE, MIN_SUPPORT), 4),
        "cases": rows,
    }
