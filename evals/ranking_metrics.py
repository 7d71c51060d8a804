"""Ranking metrics as BEIR and trec_eval define them (graded nDCG, recall@k, MRR@k)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(
        (2 ** relevant.get(doc, 0) - 1) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant
    )
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(rank + 2) for rank, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    positives = {d for d, r in relevant.items() if r > 0}
    return len(positives & set(ranked[:k])) / len(positives) if positives else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (rank + 1)
    return 0.0


def summarise(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean of each metric over the queries in `runs` (query id -> ranked doc ids)."""
    n = len(runs) or 1
    return {
        "ndcg@10": round(sum(ndcg_at(r, qrels[q], 10) for q, r in runs.items()) / n, 4),
        "recall@10": round(sum(recall_at(r, qrels[q], 10) for q, r in runs.items()) / n, 4),
        "recall@100": round(sum(recall_at(r, qrels[q], 100) for q, r in runs.items()) / n, 4),
        "mrr@10": round(sum(mrr_at(r, qrels[q], 10) for q, r in runs.items()) / n, 4),
    }
