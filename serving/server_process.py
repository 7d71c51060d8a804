"""`meshpilot serve` in a child process (`ServerProcess`), for benchmarks: start, wait until ready, stop;
and the CPU time that process trees spend (`tree_cpu_seconds`), to say where a benchmark's CPU went."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from rag.errors import MeshpilotError

_URL = re.compile(r"(http://127\.0\.0\.1:\d+)")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (exited ones are not counted)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # exited meanwhile
            continue
        total += times.user + times.system
    return total


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded PostgreSQL's postmaster, from its pid file (its first line)."""
    try:
        return int((data_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class ServerProcess:
    """Loopback only; the server's log goes to a temporary file that errors point at."""

    def __init__(self, *, workers: int, env: dict[str, str], ready_timeout_s: float = 300.0) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="meshpilot-bench-server-", suffix=".log")[1])
        self._log: IO[str] = self.log_path.open("w", encoding="utf-8")
        command = [
            sys.executable, "-m", "serving.cli.app", "serve",
            "--host", "127.0.0.1", "--port", "0", "--workers", str(workers), "--no-access-log",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        try:
            self.url = self._read_url()
            self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = _URL.search(line)
            if match:
                return match.group(1)
        raise MeshpilotError(f"the benchmark server exited before serving; see {self.log_path}")

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MeshpilotError(f"the benchmark server exited (code {self.proc.returncode}); see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise MeshpilotError(f"the benchmark server was not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
