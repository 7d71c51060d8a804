"""`meshpilot ingest` killed with SIGKILL mid-run, then the database server killed too, then a rerun:
the product ends exactly as a clean run leaves it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from rag.database import open_database, stop_embedded
from rag.ingestion import ingest_directory
from rag.products import ProductSpec
from rag.samples import product_dirs
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def snapshot(db: Any, product: str, prefix: str = "") -> dict[tuple[str, int], tuple[str, str, int]]:
    """(source, position) -> (header path, text, number of postings) for every chunk of a product."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.source, c.position, c.header_path, c.text,"
                " (SELECT count(*) FROM chunk_terms t WHERE t.chunk_id = c.id) AS postings"
                " FROM chunks c JOIN documents d ON d.id = c.document_id"
                " JOIN knowledge_products p ON p.id = d.product_id WHERE p.name = :n"
            ),
            {"n": product},
        ).all()
    return {(prefix + r.source, r.position): (r.header_path, r.text, r.postings) for r in rows}


def integrity(db: Any) -> tuple[int, int]:
    with db.engine.connect() as conn:
        wrong_counts = conn.execute(
            text(
                "SELECT count(*) FROM documents d WHERE d.chunk_count <>"
                " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
            )
        ).scalar_one()
        orphans = conn.execute(
            text("SELECT count(*) FROM chunk_terms t LEFT JOIN chunks c ON c.id = t.chunk_id WHERE c.id IS NULL")
        ).scalar_one()
    return int(wrong_counts), int(orphans)


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_a_clean_run(
    tmp_path: Path, db: Any, settings: Settings, embedder: Any, samples: Any
) -> None:
    corpus = tmp_path / "corpus"
    for d in product_dirs():
        shutil.copytree(d, corpus / d.name, ignore=shutil.ignore_patterns("product.yaml"))
    home = tmp_path / "home"
    crash_settings = Settings(home=home, embed_workers=1)
    # Small batches: documents are committed a few at a time, so the kill lands mid-run.
    env = {
        **os.environ,
        "MESHPILOT_HOME": str(home),
        "MESHPILOT_EMBED_WORKERS": "1",
        "MESHPILOT_EMBEDDING_BATCH_SIZE": "2",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "serving.cli.app", "ingest", str(corpus), "--product", "crash", "--json"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    crash_db = None
    try:
        deadline = time.monotonic() + 240
        committed = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if (home / "pg" / "postmaster.pid").exists():
                crash_db = crash_db or open_database(crash_settings)
                with crash_db.engine.connect() as conn:
                    committed = conn.execute(text("SELECT count(*) FROM documents")).scalar_one()
                if committed >= 3:
                    break
        assert proc.poll() is None, (
            f"ingest ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
        )
        assert committed >= 3
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert crash_db is not None
        crash_db.close()
        # Kill the database server as hard as the client: the next start must recover from its WAL.
        postmaster_pid = int((home / "pg" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(postmaster_pid, signal.SIGKILL)
        time.sleep(1)

        crash_db = open_database(crash_settings)
        partial = snapshot(crash_db, "crash")
        assert 0 < len({source for source, _ in partial}) < 22
        report = ingest_directory(crash_db, crash_settings, ProductSpec("crash"), corpus, embedder=embedder)
        assert report.documents_unchanged >= 3 and report.documents_deleted == 0
        assert report.documents_added + report.documents_unchanged + report.documents_updated == 22

        recovered = snapshot(crash_db, "crash")
        clean: dict[tuple[str, int], tuple[str, str, int]] = {}
        for d in product_dirs():
            clean |= snapshot(db, d.name, prefix=f"{d.name}/")
        assert recovered == clean
        assert integrity(crash_db) == (0, 0)

        # Vectors written by the killed process equal those of the clean in-process run.
        with crash_db.engine.connect() as conn:
            a = conn.execute(text("SELECT embedding FROM chunks ORDER BY document_id, position LIMIT 1")).scalar_one()
            src, pos = conn.execute(
                text(
                    "SELECT d.source, c.position FROM chunks c JOIN documents d ON d.id = c.document_id"
                    " ORDER BY c.document_id, c.position LIMIT 1"
                )
            ).one()
        product, _, source = src.partition("/")
        with db.engine.connect() as conn:
            b = conn.execute(
                text(
                    "SELECT c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id"
                    " JOIN knowledge_products p ON p.id = d.product_id"
                    " WHERE p.name = :p AND d.source = :s AND c.position = :pos"
                ),
                {"p": product, "s": source, "pos": pos},
            ).scalar_one()
        assert np.allclose(a.to_numpy(), b.to_numpy(), atol=1e-5)
    finally:
        if proc.poll() is None:
            proc.kill()
        if crash_db is not None:
            crash_db.close()
        stop_embedded(home.resolve() / "pg")
