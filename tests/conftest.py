"""Shared fixtures: one embedded PostgreSQL per test session, the real MiniLM, no outbound network."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for _var in [v for v in os.environ if v.startswith("MESHPILOT_")]:
    del os.environ[_var]  # tests state their settings explicitly
# One ONNX export of MiniLM for the whole session, the servers and CLIs it starts included: each fresh
# MESHPILOT_HOME would otherwise export its own (~6 s each).
_MODELS = tempfile.mkdtemp(prefix="meshpilot-test-models-")
os.environ["MESHPILOT_MODEL_CACHE_DIR"] = _MODELS
atexit.register(shutil.rmtree, _MODELS, ignore_errors=True)

_real_connect = socket.socket.connect


def _allowed(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may not reach the network ({address!r})")
    _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("meshpilot-home")
    yield path
    from rag.database import stop_embedded

    stop_embedded(path.resolve() / "pg")


@pytest.fixture(scope="session")
def settings(home: Path) -> Any:
    from rag.settings import Settings

    return Settings(home=home, embed_workers=1)


@pytest.fixture(scope="session")
def db(settings: Any) -> Iterator[Any]:
    from rag.database import open_database

    database = open_database(settings)
    yield database
    database.close()


@pytest.fixture(scope="session")
def embedder(settings: Any) -> Any:
    from rag.embeddings import get_embedder

    return get_embedder(settings)


@pytest.fixture(scope="session")
def samples(db: Any, settings: Any, embedder: Any) -> list[Any]:
    """The bundled sample knowledge base, ingested once per session."""
    from rag.samples import ingest_samples

    return ingest_samples(db, settings, embedder)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    monkeypatch.setenv("MESHPILOT_HOME", str(home))
    monkeypatch.setenv("MESHPILOT_EMBED_WORKERS", "1")
    return home


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (the model stays loaded); returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from serving.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
