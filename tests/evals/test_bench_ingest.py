"""`meshpilot bench ingest --json`: the whole pipeline against the raw encoder on the same chunks,
in alternating rounds, on a database of the benchmark's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_bench_ingest_reports_each_round_and_the_median_ratio(cli_env: Path) -> None:
    from rag.database import stop_embedded

    try:
        code, out, err = run_cli("bench", "ingest", "--copies", "1", "--workers", "1", "--rounds", "2", "--json")
    finally:
        stop_embedded((cli_env / "bench-ingest").resolve() / "pg")
    assert code == 0, err
    result = json.loads(out)
    assert result["chunks"] > 100 and result["documents"] > 10 and result["workers"] == 1
    assert len(result["rounds"]) == 2
    for one in result["rounds"]:
        assert one["pipeline_seconds"] > 0 and one["raw_seconds_before"] > 0 and one["raw_seconds_after"] > 0
    # The rounds' raw runs are shared: the second round starts from the first one's closing run.
    assert result["rounds"][1]["raw_seconds_before"] == result["rounds"][0]["raw_seconds_after"]
    # The reported ratio is the median round's (of two, the higher), and agrees with the rates printed.
    assert result["ratio"] == max(one["ratio"] for one in result["rounds"])
    rates = result["pipeline"]["chunks_per_s"] / result["raw_encoder"]["chunks_per_s"]
    assert abs(result["ratio"] - rates) < 0.01
    assert result["passed"] == (result["ratio"] >= result["goal_ratio"])
