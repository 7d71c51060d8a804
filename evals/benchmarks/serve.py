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
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import h11
import numpy as np
import psycopg
from sqlalchemy import text

from rag.database import Database
from rag.embeddings import Embedder
from rag.guards.documents import rescan
from rag.products import ProductSpec, delete_product, get_product, upsert_product
from rag.samples import ingest_samples, product_dirs
from rag.service import RagService
from rag.settings import Settings
from rag.store import ensure_vector_index, refresh_product_stats, vector_index_name, write_postings

PRODUCT = "bench-serve"
GROUP = "bench"
CORPUS_VERSION = 2  # 2: copies carry their original's guard verdicts (migration 4)
NOISE_SIGMA = 0.015  # per dimension; ||noise|| ~ 0.29 for 384 dimensions
SEED = 20261126
MAX_SECONDS = 600
MAX_CLIENTS = 256
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 30.0
METHOD = (
    "the sample knowledge base ingested for real (MiniLM), its chunks replicated into product "
    f"'{PRODUCT}' under distinct sources with their real embeddings plus Gaussian noise "
    f"(sigma {NOISE_SIGMA} per dimension, renormalised) and the original's guard verdict, written by binary "
    "COPY, BM25 postings and term statistics as rag/store.py writes them, HNSW built and tables vacuumed after "
    "the load"
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
    # Unchanged documents keep the verdicts of the detector that ingested them; a server would scan every
    # retrieved passage again at question time until `meshpilot guard scan --documents` ran.
    rescan(db, products=samples)
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
        _copy_current_verdicts(db, existing.id, samples)
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
                "SELECT p.name || '/' || d.source AS source, c.position, c.header_path, c.text, c.embedding,"
                " c.guard_flags, c.guard_detector"
                " FROM chunks c JOIN documents d ON d.id = c.document_id"
                " JOIN knowledge_products p ON p.id = c.product_id WHERE p.name = ANY(:s)"
                " ORDER BY c.id"
            ),
            {"s": samples},
        ).all()
        base = np.stack([np.asarray(r.embedding.to_numpy(), dtype=np.float32) for r in originals])
        dim = base.shape[1]
        rng = np.random.default_rng(SEED)
        # COPY is psycopg's own API, beyond the DB-API that SQLAlchemy types the connection as.
        raw = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY chunks (document_id, product_id, position, header_path, text, embedding, embedding_dim,"
                " guard_flags, guard_detector) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "int8", "int4", "text", "text", "vector", "int4", "text[]", "text"])
            for c in range(copies):
                noisy = base + rng.normal(0.0, NOISE_SIGMA, base.shape).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                for row, vector in zip(originals, noisy, strict=True):
                    doc = doc_ids[f"copy{c:04d}/{row.source}"]
                    # The original's guard verdict too: the context guard trusts it as it trusts ingestion's.
                    flags = (row.guard_flags, row.guard_detector)
                    copy.write_row((doc, product.id, row.position, row.header_path, row.text, vector, dim, *flags))
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


def _copy_current_verdicts(db: Database, product_id: int, samples: list[str]) -> None:
    """Copies whose originals were scanned by a newer detector take the originals' new verdicts."""
    with db.transaction() as conn:
        updated = conn.execute(
            text(
                "UPDATE chunks c SET guard_flags = o.guard_flags, guard_detector = o.guard_detector"
                " FROM documents d, chunks o, documents od, knowledge_products op"
                " WHERE c.product_id = :pid AND d.id = c.document_id"
                " AND od.id = o.document_id AND op.id = o.product_id AND op.name = ANY(:s)"
                " AND substr(d.source, length('copy0000/') + 1) = op.name || '/' || od.source"
                " AND o.position = c.position AND c.guard_detector IS DISTINCT FROM o.guard_detector"
            ),
            {"pid": product_id, "s": samples},
        ).rowcount
    if updated:
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE) chunks")


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


class _Http11:
    """One keep-alive HTTP/1.1 connection: h11 on asyncio streams. The load generator shares the
    cores with what it measures, and httpx spent about 3 ms of CPU a request here; this ~0.3 ms."""

    def __init__(self, host: str, port: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._host, self._port, self._headers = host, port, headers
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._conn = h11.Connection(h11.CLIENT)

    async def post(self, target: str, body: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
            self._conn = h11.Connection(h11.CLIENT)
        reader, writer = self._streams
        conn = self._conn
        headers = [*self._headers, (b"content-length", str(len(body)).encode())]
        sent = [conn.send(h11.Request(method="POST", target=target, headers=headers))]
        sent += [conn.send(h11.Data(data=body)), conn.send(h11.EndOfMessage())]
        writer.write(b"".join(part for part in sent if part))
        status, parts = 0, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return status, b"".join(parts)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _load(url: str, key: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    grounded = 0
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    headers = [
        (b"host", f"{host}:{port}".encode()),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
    ]
    bodies = [json.dumps({"question": q}).encode() for q in questions]
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal grounded
        http = _Http11(host, port, headers)
        i = n
        try:
            while time.perf_counter() < deadline and len(latencies) + sum(errors.values()) < MAX_REQUESTS:
                body = bodies[i % len(bodies)]
                i += clients
                t = time.perf_counter()
                try:
                    status, reply = await asyncio.wait_for(http.post("/v1/ask", body), REQUEST_TIMEOUT_S)
                except (OSError, TimeoutError, h11.ProtocolError) as exc:
                    http.close()
                    kind = type(exc).__name__
                else:
                    if status == 200:
                        latencies.append((time.perf_counter() - t) * 1000)
                        grounded += bool(json.loads(reply).get("grounded"))
                        continue
                    kind = f"HTTP {status}"
                errors[kind] = errors.get(kind, 0) + 1
        finally:
            http.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed, client_cpu = time.perf_counter() - started, time.process_time() - cpu_started
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
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(ok, 1), 2),
    }


def run_load(url: str, key: str, questions: list[str], *, clients: int = 32, seconds: float = 30.0) -> dict[str, Any]:
    """Closed-loop load on POST /v1/ask; bounded by MAX_CLIENTS, MAX_SECONDS and MAX_REQUESTS."""
    if not 1 <= clients <= MAX_CLIENTS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"clients must be 1..{MAX_CLIENTS} and seconds 0..{MAX_SECONDS}")
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    try:  # uvloop (uvicorn[standard] installs it) makes the client cheaper still
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - platforms without uvloop
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_load(url, key, questions, clients, seconds))


def golden_questions() -> list[str]:
    from evals.calibration import load_golden

    return [q.question for q in load_golden()]
