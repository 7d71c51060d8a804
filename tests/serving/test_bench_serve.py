"""`meshpilot bench serve` end to end, small: its own corpus database, a real server, real clients."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import run_cli


@pytest.mark.slow
def test_bench_serve_reports_throughput_latency_and_a_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Any
) -> None:
    from evals.benchmarks.serve import build_corpus
    from rag.database import open_database, stop_embedded
    from rag.guards.documents import detector_fingerprint
    from rag.settings import Settings

    monkeypatch.setenv("MESHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MESHPILOT_EMBED_WORKERS", "1")
    args = ("bench", "serve", "--chunks", "1000", "--clients", "4", "--seconds", "2", "--json")
    try:
        code, out, err = run_cli(*args)
        assert code == 0, err
        first = json.loads(out)
        bench_settings = Settings(home=tmp_path / "home" / "bench-serve", embed_workers=1)
        db = open_database(bench_settings)
        try:
            with db.transaction() as conn:  # as if a newer detector had shipped since the corpus was built
                conn.execute(text("UPDATE chunks SET guard_detector = 'an-older-detector'"))
            again = build_corpus(db, bench_settings, embedder, 1000)  # what a second run does first
            with db.engine.connect() as conn:  # copies carry their original's current verdict, as ingestion writes it
                stale = conn.execute(
                    text("SELECT count(*) FROM chunks WHERE guard_detector IS DISTINCT FROM :f"),
                    {"f": detector_fingerprint()},
                ).scalar_one()
        finally:
            db.close()
    finally:
        stop_embedded((tmp_path / "home" / "bench-serve").resolve() / "pg")
    assert first["errors"] == 0 and first["ok"] > 0 and first["throughput_rps"] > 0
    assert set(first["latency_ms"]) == {"p50", "p95", "p99", "mean", "max"}
    assert first["latency_ms"]["p50"] <= first["latency_ms"]["p95"] <= first["latency_ms"]["p99"]
    assert first["corpus"]["bench_product_chunks"] >= 1000 and first["corpus"]["cached"] is False
    assert "replicated" in first["corpus"]["method"]
    assert first["baseline_in_process"]["requests"] > 0 and first["ratios"]["throughput_vs_in_process"] > 0
    assert isinstance(first["passed"], bool) and first["query_embedding_precision"] == "int8"
    # How the server answered: one worker process per core, 3 questions at once per core.
    cores = os.cpu_count() or 1
    assert first["answer_processes"] == cores and first["ask_concurrency"] == 3 * cores
    cpu = first["cpu_ms_per_request"]
    assert set(cpu) == {"client", "server", "database", "machine"} and cpu["server"] > 0 and cpu["database"] > 0
    assert 0 < cpu["client"] < cpu["machine"]
    # A second run reuses the corpus: only queries.
    assert again.cached and again.chunks == first["corpus"]["bench_product_chunks"]
    assert stale == 0  # else the server would scan every retrieved passage again at question time
