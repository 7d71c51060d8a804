"""`meshpilot bench draft`: the whole graph on a generated CSV, with a breakdown by stage."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

STAGES = {"profile", "standards", "draft", "validate", "publish"}


def test_bench_draft_small_reports_every_stage() -> None:
    code, stdout, stderr = run_cli("bench", "draft", "--rows", "2000", "--columns", "12", "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["valid"] is True and result["status"] == "published" and set(result["stages_ms"]) >= STAGES


@pytest.mark.slow
def test_bench_draft_100k_rows_20_columns() -> None:
    code, stdout, _ = run_cli("bench", "draft", "--json")
    result = json.loads(stdout)
    print(json.dumps(result))
    # Goal 10 s on 2 cores; asserted with headroom because other suites share the machine.
    assert code == 0 and result["valid"] is True and result["rows"] == 100_000 and result["total_s"] <= 20
