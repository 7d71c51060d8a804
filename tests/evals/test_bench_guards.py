"""`meshpilot bench guards --json`: every stage timed on every message, guardrails' share reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_bench_guards_prints_each_stage(cli_env: Path, samples: Any) -> None:
    code, out, err = run_cli("bench", "guards", "--repeats", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["stages"]) == {"input", "context", "output", "total"}
    for stage in result["stages"].values():
        assert 0 < stage["p50_ms"] <= stage["p95_ms"]
    assert result["messages"] >= 100 and 2 <= result["guard_calls_per_message"] <= 3
    assert 0 <= result["guardrails_share_p50"] <= 1 and result["embedding_reused"] is True
    # Injections among the red-team questions are refused at the input boundary, benign questions are not.
    assert result["flagged_inputs"]["attacks"] >= 6
    assert result["flagged_inputs"]["benign"] == 0 and result["flagged_inputs"]["golden"] == 0
