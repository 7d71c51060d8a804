"""`meshpilot serve` and `meshpilot demo` as real subprocesses: the URL they print answers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.api.conftest import bearer, make_key

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def meshpilot(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run `meshpilot ARGS` until the test is done with it, then Ctrl-C it; yields (process, stdout lines)."""
    environment = {**os.environ, "MESHPILOT_HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli.app", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_url(proc: subprocess.Popen[str], lines: list[str], pattern: str) -> re.Match[str]:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matched {pattern!r}: {''.join(lines)} {proc.stderr.read() if proc.stderr else ''}")


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


@pytest.mark.slow
def test_serve_with_two_workers_shares_the_rate_limit(home: Path, db: Any, samples: Any) -> None:
    key = make_key(db, "workers", ["sre"])
    env = {"MESHPILOT_API_RATE_LIMIT_PER_MINUTE": "6"}
    with meshpilot(home, "serve", "--port", "0", "--workers", "2", "--no-access-log", env=env) as (proc, lines):
        url = wait_for_url(proc, lines, r"(http://127\.0\.0\.1:\d+)").group(1)
        wait_ready(url)
        statuses = []
        for _ in range(9):  # a new connection each time, so both workers take requests
            r = httpx.get(f"{url}/v1/models", headers={**bearer(key), "Connection": "close"})
            statuses.append(r.status_code)
        # Answers come from whichever worker; the limit is counted in PostgreSQL, so it holds across them.
        assert statuses.count(200) == 6 and statuses.count(429) == 3, statuses
        metrics = httpx.get(f"{url}/metrics").text
        assert 'meshpilot_http_requests_total{method="GET",route="/v1/models",status="200"} 6.0' in metrics, metrics
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.slow
def test_demo_ends_by_serving_with_a_printed_key(home: Path, samples: Any) -> None:
    with meshpilot(home, "demo", "--port", "0") as (proc, lines):
        key = wait_for_url(proc, lines, r"demo API key.*: (mp_[A-Za-z0-9_-]{43})").group(1)
        url = wait_for_url(proc, lines, r"web chat.*?(http://127\.0\.0\.1:\d+)/").group(1)
        wait_ready(url)
        assert "I don't know" in "".join(lines)  # the sample questions ran first
        r = httpx.post(f"{url}/v1/ask", json={"question": "How fast must a SEV1 be acknowledged?"}, headers=bearer(key))
        assert r.status_code == 200 and "15 minutes" in r.json()["answer"]
        assert httpx.get(f"{url}/").status_code == 200
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
