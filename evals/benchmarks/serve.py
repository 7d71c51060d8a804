"""Serving benchmark: concurrent clients on /v1/ask against a ~50,000-chunk knowledge base.

The corpus (`BenchCorpus`) is built fast and honestly: embedding 50,000 chunks for real takes about
15 minutes here, so the bundled sample knowledge base is ingested for real (MiniLM) and its chunks
are replicated into one product, `bench-serve`, each copy under distinct sources (`copyNNNN/...`)
with its real embedding plus small Gaussian noise (renormalised; cosine to the original ~0.96).
The rows are written with binary COPY into an index-free table, the BM25 postings and term
statistics with the same statements that rag/store.py runs, the HNSW index is built once afterwards
and the tables are vacuumed. Lexically the copies are duplicates, so every query term's postings are
~270 times those of the sample base: the lexical side works harder than on 50,000 distinct chunks.
The corpus is cached in the benchmark's own database; a second run only queries.

The load (`run_load`) is closed-loop: each client sends its next question when the previous answer
arrived, for a fixed time. This module takes a URL and a key; `meshpilot bench serve` starts the
server (evals must not import serving).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy import text

from rag.database import Database
from rag.embeddings import Embedder
from rag.products import ProductSpec, delete_product, get_product, upsert_product
from rag.samples import ingest_samples, product_dirs
from rag.service import RagService
from rag.settings import Settings
from rag.store import ensure_vector_index, refresh_product_stats, vector_index_name, write_postings

PRODUCT = "bench-serve"
GROUP = "bench"
CORPUS_VERSION = 1
NOISE_SIGMA = 0.015  # per dimension; ||noise|| ~ 0.29 for 384 dimensions
SEED = 20261126
MAX_SECONDS = 600
MAX_CLIENTS = 256
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 30.0
METHOD = (
    "the sample knowledge base ingested for real (MiniLM), its chunks replicated into product "
    f"'{PRODUCT}' under distinct sources with their real embeddings plus Gaussian noise "
    f"(sigma {NOISE_SIGMA} per dimension, renormalised), written by binary COPY, BM25 postings from the "
    "generated tsvector as rag/store.py does, HNSW built after the load"
)


@dataclass(frozen=True)
class BenchCorpus:
    chunks: int  # in the bench product
    total_chunks: int  # every chunk the bench key may read
    documents: int
    copies: int
    cached: bool
    build_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench_product_chunks": self.chunks,
            "chunks_visible_to_the_bench_key": self.total_chunks,
            "documents": self.documents,
            "copies_of_the_sample_base": self.copies,
            "cached": self.cached,
            "build_seconds": round(self.build_seconds, 1),
            "method": METHOD,
        }


def _version(target: int) -> str:
    return f"bench-v{CORPUS_VERSION}-{target}-{SEED}"


def _counts(db: Database) -> tuple[int, int, int]:
    with db.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM chunks c JOIN knowledge_products p ON p.id = c.product_id"
                "        WHERE p.name = :n),"
                " (SELECT count(*) FROM documents d JOIN knowledge_products p ON p.id = d.product_id"
                "        WHERE p.name = :n),"
                " (SELECT count(*) FROM chunks)"
            ),
            {"n": PRODUCT},
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def build_corpus(db: Database, settings: Settings, embedder: Embedder, target_chunks: int) -> BenchCorpus:
    """The bench product with at least `target_chunks` chunks, built unless already there."""
    started = time.perf_counter()
    ingest_samples(db, settings, embedder)  # unchanged documents are skipped: cheap when cached
    samples = [d.name for d in product_dirs()]
    with db.engine.connect() as conn:
        existing = get_product(conn, PRODUCT)
        sample_chunks = int(
            conn.execute(
                text(
                    "SELECT count(*) FROM chunks c JOIN knowledge_products p ON p.id = c.product_id"
                    " WHERE p.name = ANY(:s)"
                ),
                {"s": samples},
            ).scalar_one()
        )
    copies = math.ceil(target_chunks / sample_chunks)
    if existing is not None and existing.version == _version(target_chunks) and existing.chunks >= target_chunks:
        chunks, documents, total = _counts(db)
        return BenchCorpus(chunks, total, documents, copies, True, time.perf_counter() - started)

    with db.transaction() as conn:
        delete_product(conn, PRODUCT)
        spec = ProductSpec(PRODUCT, classification="internal", groups=[GROUP], version=_version(target_chunks))
        product, _ = upsert_product(conn, spec, embedder.model_id, embedder.dimension)
        # Inserting into an existing HNSW graph row by row is much slower than one build after the load.
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {vector_index_name(embedder.dimension)}")
        conn.execute(
            text(
                "INSERT INTO documents (product_id, source, title, media_type, content_hash, pipeline,"
                " size_bytes, chunk_count, token_count)"
                " SELECT :pid, 'copy' || lpad(g::text, 4, '0') || '/' || p.name || '/' || d.source, d.title,"
                " d.media_type, d.content_hash, d.pipeline, d.size_bytes, d.chunk_count, d.token_count"
                " FROM generate_series(0, :copies - 1) g CROSS JOIN documents d"
                " JOIN knowledge_products p ON p.id = d.product_id WHERE p.name = ANY(:s)"
            ),
            {"pid": product.id, "copies": copies, "s": samples},
        )
        doc_ids = {
            r.source: r.id
            for r in conn.execute(text("SELECT id, source FROM documents WHERE product_id = :p"), {"p": product.id})
        }
        originals = conn.execute(
            text(
                "SELECT p.name || '/' || d.source AS source, c.position, c.header_path, c.text, c.embedding"
                " FROM chunks c JOIN documents d ON d.id = c.document_id"
                " JOIN knowledge_products p ON p.id = c.product_id WHERE p.name = ANY(:s)"
                " ORDER BY c.id"
            ),
            {"s": samples},
        ).all()
        base = np.stack([np.asarray(r.embedding.to_numpy(), dtype=np.float32) for r in originals])
        rng = np.random.default_rng(SEED)
        # COPY is psycopg's own API, beyond the DB-API that SQLAlchemy types the connection as.
        raw = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY chunks (document_id, product_id, position, header_path, text, embedding, embedding_dim)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "int8", "int4", "text", "text", "vector", "int4"])
            for c in range(copies):
                noisy = base + rng.normal(0.0, NOISE_SIGMA, base.shape).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                for row, vector in zip(originals, noisy, strict=True):
                    doc = doc_ids[f"copy{c:04d}/{row.source}"]
                    copy.write_row((doc, product.id, row.position, row.header_path, row.text, vector, base.shape[1]))
        write_postings(conn, "c.product_id = :p", {"p": product.id})
        refresh_product_stats(conn, product.id)
    with db.transaction() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        ensure_vector_index(conn, embedder.dimension)
    with db.engine.connect() as conn:
        # VACUUM sets the visibility map of the fresh pages, so the postings are read by index-only scans
        # at once, as after autovacuum in a long-running database.
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")
    chunks, documents, total = _counts(db)
    return BenchCorpus(chunks, total, documents, copies, False, time.perf_counter() - started)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    ordered = sorted(samples_ms)

    def at(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "p50": round(at(0.50), 1),
        "p95": round(at(0.95), 1),
        "p99": round(at(0.99), 1),
        "mean": round(statistics.fmean(ordered), 1),
        "max": round(ordered[-1], 1),
    }


def baseline(service: RagService, questions: list[str], rounds: int = 2) -> dict[str, Any]:
    """`RagService.ask` in this process, one question at a time: what one request costs without HTTP."""
    groups = [GROUP]
    for q in questions[:5]:  # warm caches and the model
        service.ask(q, groups=groups)
    latencies = []
    started = time.perf_counter()
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            service.ask(q, groups=groups)
            latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "concurrency": 1,
        "per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": percentiles(latencies),
    }


async def _load(url: str, key: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    grounded = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as http:

        async def client(n: int) -> None:
            nonlocal grounded
            i = n
            while time.perf_counter() < deadline and len(latencies) + sum(errors.values()) < MAX_REQUESTS:
                question = questions[i % len(questions)]
                i += clients
                t = time.perf_counter()
                try:
                    r = await http.post("/v1/ask", json={"question": question})
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                else:
                    if r.status_code == 200:
                        latencies.append((time.perf_counter() - t) * 1000)
                        grounded += bool(r.json().get("grounded"))
                        continue
                    kind = f"HTTP {r.status_code}"
                errors[kind] = errors.get(kind, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    ok = len(latencies)
    return {
        "requests": ok + sum(errors.values()),
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(ok / elapsed, 1),
        "latency_ms": percentiles(latencies),
        "grounded_share": round(grounded / ok, 3) if ok else 0.0,
    }


def run_load(url: str, key: str, questions: list[str], *, clients: int = 32, seconds: float = 30.0) -> dict[str, Any]:
    """Closed-loop load on POST /v1/ask; bounded by MAX_CLIENTS, MAX_SECONDS and MAX_REQUESTS."""
    if not 1 <= clients <= MAX_CLIENTS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"clients must be 1..{MAX_CLIENTS} and seconds 0..{MAX_SECONDS}")
    return asyncio.run(_load(url, key, questions, clients, seconds))


def golden_questions() -> list[str]:
    from evals.calibration import load_golden

    return [q.question for q in load_golden()]
