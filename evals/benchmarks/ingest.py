"""Ingestion throughput: the whole pipeline (read, chunk, embed, write) against the raw encoder.

Both sides use the same encoder processes (one torch thread each, warmed up first) and the same
chunk texts; the raw encoder is timed before and after the pipeline and averaged, so drift of the
machine during the run shows in neither figure alone. The raw encoder gets its best case: texts
sorted by length before batching, so its batches carry the least padding.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from rag.chunks import chunk_document
from rag.database import Database
from rag.documents import parse, read_bytes, scan
from rag.embeddings import embedding_text
from rag.encoder_pool import EncoderPool
from rag.ingestion import ingest_directory
from rag.products import ProductSpec, delete_product
from rag.samples import sample_knowledge_dir
from rag.settings import Settings
from rag.store import vector_index_name

PRODUCT = "bench-ingest"


def build_corpus(target: Path, copies: int) -> None:
    """`copies` variants of the sample knowledge base: distinct bytes, realistic documents."""
    source = sample_knowledge_dir()
    for i in range(copies):
        for file in scan(source):
            if file.path.name == "product.yaml":
                continue
            out = target / f"copy{i:03d}" / file.source
            out.parent.mkdir(parents=True, exist_ok=True)
            data = file.path.read_bytes()
            if file.media_type in ("text/markdown", "text/plain"):
                data += f"\n\nRevision note {i}: copy {i} of this document for the ingestion benchmark.\n".encode()
            elif file.media_type == "application/yaml":
                data += f"\n# benchmark copy {i}\n".encode()
            else:
                out = out.with_name(f"{out.stem}-{i}{out.suffix}")
            out.write_bytes(data)


def corpus_texts(directory: Path, settings: Settings) -> list[str]:
    texts = []
    for file in scan(directory):
        doc = parse(file, read_bytes(file))
        texts += [
            embedding_text(c.header_path, c.text)
            for c in chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
        ]
    return texts


def run(
    db: Database, settings: Settings, *, copies: int = 5, workers: int | None = None, fresh_index: bool = False
) -> dict[str, Any]:
    """`fresh_index`: drop the HNSW index first (only in a database of the benchmark's own), so the
    pipeline takes its bulk-load path, inserts first and the index built once at the end."""
    workers = workers or settings.workers
    with db.transaction() as conn:
        delete_product(conn, PRODUCT)
        if fresh_index:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {vector_index_name(EncoderPool.dimension)}")
    workdir = Path(tempfile.mkdtemp(prefix="meshpilot-bench-"))
    try:
        build_corpus(workdir, copies)
        texts = corpus_texts(workdir, settings)
        by_length = sorted(texts, key=len)
        with EncoderPool(
            workers, settings.embedding_batch_size, runtime=settings.embedding_runtime, models_dir=settings.models_dir
        ) as pool:
            pool.warm_up()
            t = time.perf_counter()
            pool.embed(by_length)
            raw_before = time.perf_counter() - t

            t = time.perf_counter()
            report = ingest_directory(db, settings, ProductSpec(PRODUCT, classification="internal"), workdir, pool=pool)
            pipeline = time.perf_counter() - t

            t = time.perf_counter()
            pool.embed(by_length)
            raw_after = time.perf_counter() - t
        with db.engine.connect() as conn:
            stored = conn.execute(
                text(
                    "SELECT count(*) FROM chunks c JOIN knowledge_products p ON p.id = c.product_id WHERE p.name = :n"
                ),
                {"n": PRODUCT},
            ).scalar_one()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with db.transaction() as conn:
            delete_product(conn, PRODUCT)

    if stored != len(texts) or report.chunks_written != len(texts):
        raise RuntimeError(f"pipeline wrote {report.chunks_written} chunks, raw encoder saw {len(texts)}")
    raw = (raw_before + raw_after) / 2
    pipeline_rate = len(texts) / pipeline
    raw_rate = len(texts) / raw
    return {
        "benchmark": "ingest",
        "documents": report.documents_added,
        "chunks": len(texts),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "torch_threads_per_worker": 1,
        "pipeline": {"seconds": round(pipeline, 3), "chunks_per_s": round(pipeline_rate, 2)},
        "raw_encoder": {
            "seconds": round(raw, 3),
            "seconds_before": round(raw_before, 3),
            "seconds_after": round(raw_after, 3),
            "chunks_per_s": round(raw_rate, 2),
        },
        "ratio": round(pipeline_rate / raw_rate, 3),
        "database": "the benchmark's own (HNSW index built after the load)" if fresh_index else "as configured",
        "goal_ratio": 0.85,
        "passed": pipeline_rate / raw_rate >= 0.85,
    }
