"""Retrieval quality on a BEIR dataset with the production retriever (`meshpilot eval retrieval`).

The corpus is indexed as an ordinary knowledge product (internal, readable only by the
`meshpilot-eval` group, so it never shows up in anyone's answers) named after the corpus hash, the
embedding model and the chunking pipeline: a second run finds it and only queries. Passages are
chunks; a document's rank is the rank of its best chunk.

Parameters are chosen on the train qrels only (`tune=True`): dense and lexical top-`candidates` lists
are fetched once per train query and fused in Python for each candidate weight, exactly as the SQL
fuses them; the test split is then run through the production SQL with the chosen weight. Each side
scored alone reads more candidates (`single_side_retriever`), so its recall@100 ranks 100 documents.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections.abc import Sequence
from typing import Any

from evals.beir import BeirDataset
from evals.ranking_metrics import summarise
from rag.chunks import pipeline_id
from rag.database import Database
from rag.embeddings import Embedder, query_precision
from rag.ingestion import ProgressFn, record_input, sync_documents
from rag.products import ProductSpec, get_product
from rag.retrieval import HybridRetriever, Mode, RetrievedPassage
from rag.settings import Settings

EVAL_GROUP = "meshpilot-eval"
CHUNKS_PER_QUERY = 200
"""Chunks asked for a query: the hybrid fuses at most twice `candidates` (160); a side scored alone
reads this many candidates, enough chunks for the 100 documents recall@100 ranks."""


def product_name(dataset: BeirDataset, settings: Settings, model_id: str) -> str:
    key = f"{dataset.corpus_sha256}|{model_id}|{pipeline_id(settings.chunk_size, settings.chunk_overlap)}"
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.name.lower()).strip("-") or "corpus"
    return f"beir-{slug[:40]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def ensure_index(
    db: Database, settings: Settings, dataset: BeirDataset, embedder: Embedder, progress: ProgressFn | None = None
) -> tuple[str, float, bool]:
    """(product name, seconds spent indexing, whether the index was already there)."""
    name = product_name(dataset, settings, embedder.model_id)
    with db.engine.connect() as conn:
        existing = get_product(conn, name)
    if existing is not None and existing.documents == len(dataset.corpus):
        return name, 0.0, True
    spec = ProductSpec(
        name,
        domain="evaluation",
        classification="internal",
        groups=[EVAL_GROUP],
        description=f"BEIR {dataset.name}, for evaluation only",
    )
    inputs = [record_input(doc_id, title, text) for doc_id, (title, text) in dataset.corpus.items()]
    started = time.perf_counter()
    # MiniLM: let sync_documents start encoder processes (both cores); a remote embedder is used as is.
    remote = settings.embedding_base_url is not None
    sync_documents(db, settings, spec, inputs, embedder=embedder if remote else None, progress=progress)
    return name, time.perf_counter() - started, False


def ranked_documents(passages: Sequence[RetrievedPassage], limit: int = 100) -> list[str]:
    return list(dict.fromkeys(p.source for p in passages))[:limit]


def _z(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    if not scores:
        return {}, 0.0
    values = list(scores.values())
    mu, sd = statistics.fmean(values), statistics.pstdev(values)
    if sd == 0:
        return dict.fromkeys(scores, 0.0), 0.0
    return {k: (v - mu) / sd for k, v in scores.items()}, (min(values) - mu) / sd


def fuse(dense: dict[int, float], lexical: dict[int, float], weight: float) -> list[int]:
    """Chunk ids by fused score: the same z-score fusion as the hybrid SQL."""
    zd, dmin = _z(dense)
    zl, lmin = _z(lexical)
    fused = {c: weight * zd.get(c, dmin) + (1 - weight) * zl.get(c, lmin) for c in set(dense) | set(lexical)}
    return sorted(fused, key=lambda c: (-fused[c], c))


def single_side_retriever(db: Database, embedder: Embedder, settings: Settings) -> HybridRetriever:
    """The retriever `dense` and `fulltext` are scored with: the production one reading CHUNKS_PER_QUERY
    candidates, so their recall@100 is not cut at `candidates` chunks (80, often fewer than 100
    documents). The HNSW scan goes past the connection's `ef_search` (iterative scans) to fill them.
    The hybrid, what the service answers with, keeps the production settings."""
    depth = {"candidates": max(settings.candidates, CHUNKS_PER_QUERY)}
    return HybridRetriever.for_questions(db, embedder, settings.model_copy(update=depth))


def tune_dense_weight(
    retriever: HybridRetriever, product: str, dataset: BeirDataset, queries: list[tuple[str, str]]
) -> dict[str, Any]:
    qrels = dataset.qrels["train"]
    sides: list[tuple[str, dict[int, float], dict[int, float], dict[int, str]]] = []
    for qid, text in queries:
        vector = retriever.embedder.embed([text])[0]
        kw: dict[str, Any] = {"groups": [EVAL_GROUP], "product": product, "query_vector": vector, "check": False}
        dense = retriever.retrieve(text, mode=Mode.DENSE, top_k=CHUNKS_PER_QUERY, **kw).passages
        lexical = retriever.retrieve(text, mode=Mode.FULLTEXT, top_k=CHUNKS_PER_QUERY, **kw).passages
        sources = {p.chunk_id: p.source for p in [*dense, *lexical]}
        sides.append((qid, {p.chunk_id: p.score for p in dense}, {p.chunk_id: p.score for p in lexical}, sources))
    grid = [round(0.05 * i, 2) for i in range(21)]
    table = {}
    for weight in grid:
        runs = {qid: list(dict.fromkeys(src[c] for c in fuse(d, lx, weight)))[:100] for qid, d, lx, src in sides}
        table[weight] = summarise(runs, qrels)["ndcg@10"]
    best = max(grid, key=lambda w: (table[w], -abs(w - 0.5)))
    return {"split": "train", "queries": len(queries), "ndcg@10_by_dense_weight": table, "dense_weight": best}


def run(
    db: Database,
    settings: Settings,
    embedder: Embedder,
    dataset: BeirDataset,
    *,
    modes: Sequence[Mode] = (Mode.DENSE, Mode.FULLTEXT, Mode.HYBRID),
    split: str = "test",
    limit_queries: int | None = None,
    tune: bool = False,
    tune_queries: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    product, index_seconds, cached = ensure_index(db, settings, dataset, embedder, progress)
    tuning = None
    if tune:
        train = dataset.split_queries("train", tune_queries)
        tuning = tune_dense_weight(HybridRetriever.for_questions(db, embedder, settings), product, dataset, train)
        settings = settings.model_copy(update={"dense_weight": tuning["dense_weight"]})
    retriever = HybridRetriever.for_questions(db, embedder, settings)
    alone = single_side_retriever(db, embedder, settings) if set(modes) - {Mode.HYBRID} else retriever
    retrievers = {m: retriever if m == Mode.HYBRID else alone for m in modes}
    questions = retriever.embedder  # what the service embeds questions with
    queries = dataset.split_queries(split, limit_queries)
    qrels = dataset.qrels[split]

    runs: dict[Mode, dict[str, list[str]]] = {m: {} for m in modes}
    sql_ms: dict[Mode, list[float]] = {m: [] for m in modes}
    embed_ms: list[float] = []
    for i, (qid, text) in enumerate(queries):
        started = time.perf_counter()
        vector = questions.embed([text])[0]
        embed_ms.append((time.perf_counter() - started) * 1000)
        for mode in modes:
            result = retrievers[mode].retrieve(
                text,
                groups=[EVAL_GROUP],
                product=product,
                mode=mode,
                top_k=CHUNKS_PER_QUERY,
                query_vector=vector,
                check=False,
            )
            runs[mode][qid] = ranked_documents(result.passages)
            sql_ms[mode].append(result.ms)
        if progress:
            progress(i + 1, len(queries), qid)

    with db.engine.connect() as conn:
        stored = get_product(conn, product)
    assert stored is not None

    def latency(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        }

    return {
        "dataset": dataset.name,
        "split": split,
        "queries": len(queries),
        "modes": {m.value: summarise(runs[m], qrels) for m in modes},
        "index_seconds": round(index_seconds, 2),
        "index_cached": cached,
        "documents": stored.documents,
        "chunks": stored.chunks,
        "embedding_model": embedder.model_id,
        "query_embedding_precision": query_precision(questions),
        "dense_weight": settings.dense_weight,
        "candidates": {m.value: retrievers[m].settings.candidates for m in modes},
        "tuning": tuning,
        "latency_ms": {
            "query_embedding": latency(embed_ms),
            **{f"{m.value}_sql": latency(sql_ms[m]) for m in modes},
        },
    }
