"""The process-wide BLAS limit (rag/blas.py), checked in fresh interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, numpy\n"
    "from threadpoolctl import threadpool_info\n"
    "from rag.blas import use_one_blas_thread\n"
    "before = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
    "use_one_blas_thread()\n"
    "after = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
    "print(json.dumps({'before': before, 'after': after}))\n"
)


def _probe(**env: str) -> dict[str, list[int]]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, list[int]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_numpy_runs_on_one_blas_thread_after_the_limit() -> None:
    result = _probe()
    if not result["before"]:
        pytest.skip("this numpy links no BLAS library that threadpoolctl can see")
    assert result["after"] == [1] * len(result["before"])


def test_an_operators_own_thread_count_wins() -> None:
    result = _probe(OPENBLAS_NUM_THREADS="2")
    if not result["before"]:
        pytest.skip("this numpy links no BLAS library that threadpoolctl can see")
    assert result["after"] == result["before"] == [2] * len(result["before"])
