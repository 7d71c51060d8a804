"""Syncing a folder into a knowledge product and reporting what changed (`IngestReport`).

After a run the product holds exactly the supported files under the folder: new files added,
changed files (by content hash, or by chunking pipeline) re-chunked and re-embedded, unchanged files
skipped, vanished files deleted. Each document is replaced in one transaction, so a run killed at any
point leaves every document either in its old or its new state, and the next run finishes the job.
Unreadable files are reported and skipped; their stored version, if any, is kept.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from rag.chunks import Chunk, chunk_document, pipeline_id
from rag.database import Database
from rag.documents import (
    SourceDocument,
    SourceFile,
    UnreadableDocument,
    content_hash,
    parse,
    read_bytes,
    scan,
)
from rag.embeddings import Embedder, Vectors, embedding_text
from rag.encoder_pool import EncoderPool
from rag.errors import MeshpilotError, UsageError
from rag.products import ProductSpec, upsert_product
from rag.settings import Settings
from rag.store import delete_document, ensure_vector_index, replace_document, stored_documents

ProgressFn = Callable[[int, int, str], None]  # (done, total, current source)
# Above this many bytes to (re)index, starting encoder processes pays for itself.
POOL_MIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass
class IngestReport:
    product: str
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    chunks: int = 0
    embedding_model: str = ""
    chunks_written: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class _Pending:
    file: SourceFile
    doc: SourceDocument
    digest: str
    size: int
    chunks: list[Chunk]
    parts: list[Future[Vectors]]
    is_new: bool


def _done(vectors: Vectors) -> Future[Vectors]:
    future: Future[Vectors] = Future()
    future.set_result(vectors)
    return future


class _ProductLock:
    """A session advisory lock: one ingest per product at a time; released if the process dies."""

    def __init__(self, db: Database, product: str) -> None:
        self._conn = db.engine.connect()
        self._key = zlib.crc32(f"meshpilot.ingest.{product}".encode())
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar_one()
        self._conn.commit()
        if not got:
            self._conn.close()
            raise MeshpilotError(f"another ingest of product {product!r} is running; try again when it ends")

    def release(self) -> None:
        self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        self._conn.commit()
        self._conn.close()


def ingest_directory(
    db: Database,
    settings: Settings,
    spec: ProductSpec,
    directory: Path,
    *,
    embedder: Embedder | None = None,
    pool: EncoderPool | None = None,
    reembed: bool = False,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Sync `directory` into the product `spec.name`.

    Vectors come from `pool` or `embedder` when given; otherwise from encoder processes started here
    for large MiniLM jobs, or the process's embedder (loaded only when something needs embedding).
    """
    started = time.perf_counter()
    if not directory.exists():
        raise UsageError(f"folder not found: {directory}")
    if not directory.is_dir():
        raise UsageError(f"not a folder: {directory}")

    from rag.embeddings import MiniLMEmbedder, get_embedder

    remote = settings.embedding_base_url is not None
    if embedder is None and pool is None and remote:
        embedder = get_embedder(settings)  # probes the endpoint for its dimension
    source_model: Embedder | EncoderPool | None = embedder or pool
    model_id = source_model.model_id if source_model else MiniLMEmbedder.model_id
    dim = source_model.dimension if source_model else MiniLMEmbedder.dimension

    lock = _ProductLock(db, spec.name)
    own_pool: EncoderPool | None = None
    try:
        with db.transaction() as conn:
            product, model_changed = upsert_product(conn, spec, model_id, dim, reembed=reembed)
            stored = stored_documents(conn, product.id)
        report = IngestReport(product=product.name, embedding_model=model_id)
        pipeline = pipeline_id(settings.chunk_size, settings.chunk_overlap)

        present: set[str] = set()
        todo: list[tuple[SourceFile, int]] = []
        for file in scan(directory):
            present.add(file.source)
            try:
                data = read_bytes(file)
            except UnreadableDocument as exc:
                report.skipped.append(SkippedFile(file.source, str(exc)))
                continue
            old = stored.get(file.source)
            if (
                old
                and old.content_hash == content_hash(data)
                and old.pipeline == pipeline
                and not (reembed or model_changed)
            ):
                report.documents_unchanged += 1
            else:
                todo.append((file, len(data)))

        if embedder is None and pool is None and todo:
            if sum(size for _, size in todo) >= POOL_MIN_BYTES and settings.workers > 1:
                own_pool = pool = EncoderPool(settings.workers, settings.embedding_batch_size)
            else:
                embedder = get_embedder(settings)

        inflight: deque[_Pending] = deque()
        max_parts = 2 * (pool.workers if pool else 1) + 1
        done = 0

        def flush() -> None:
            nonlocal done
            item = inflight.popleft()
            parts = [f.result() for f in item.parts]
            vectors = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
            with db.transaction() as conn:
                replace_document(
                    conn,
                    product_id=product.id,
                    source=item.file.source,
                    title=item.doc.title,
                    media_type=item.file.media_type,
                    content_hash=item.digest,
                    pipeline=pipeline,
                    size_bytes=item.size,
                    chunks=item.chunks,
                    vectors=vectors,
                )
            report.chunks_written += len(item.chunks)
            if item.is_new:
                report.documents_added += 1
            else:
                report.documents_updated += 1
            done += 1
            if progress:
                progress(done, len(todo), item.file.source)

        for file, _ in todo:
            try:
                data = read_bytes(file)
                doc = parse(file, data)
            except UnreadableDocument as exc:
                report.skipped.append(SkippedFile(file.source, str(exc)))
                done += 1
                if progress:
                    progress(done, len(todo), file.source)
                continue
            chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
            texts = [embedding_text(c.header_path, c.text) for c in chunks]
            if pool is not None:
                step = pool.batch_size
                parts = [pool.submit(texts[i : i + step]) for i in range(0, len(texts), step)]
            else:
                assert embedder is not None
                parts = [_done(embedder.embed(texts))] if texts else []
            inflight.append(
                _Pending(file, doc, content_hash(data), len(data), chunks, parts, file.source not in stored)
            )
            while sum(len(p.parts) for p in inflight) > max_parts:
                flush()
        while inflight:
            flush()

        for source in sorted(set(stored) - present):
            with db.transaction() as conn:
                if delete_document(conn, product.id, source):
                    report.documents_deleted += 1

        with db.transaction() as conn:
            ensure_vector_index(conn, dim)
            report.chunks = int(
                conn.execute(
                    text("SELECT coalesce(sum(chunk_count), 0) FROM documents WHERE product_id = :p"),
                    {"p": product.id},
                ).scalar_one()
            )
    finally:
        if own_pool is not None:
            own_pool.close()
        lock.release()
    report.seconds = time.perf_counter() - started
    return report
