"""A real uvicorn server on 127.0.0.1 (port 0) running `create_app` on the session's database and model."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

WEBHOOK_SECRET = "test-webhook-secret"
PR_REPOSITORY = "lakeshore/data-products"  # the PR bot's configured repository, a local clone
CANARY = "CANARY-FIN-7Q4X-ORCHID"
CANARY_QUESTION = "What is the code name of the FY2027 revenue forecast model?"


class LiveServer:
    """uvicorn serving `app` in a thread; `url` is known once it accepts connections."""

    def __init__(self, app: Any, log_level: str = "warning") -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()


@dataclass(frozen=True)
class Keys:
    sales: str
    finance: str
    sre: str
    admin: str
    public: str  # no groups: public products only


def make_key(db: Any, name: str, groups: list[str], admin: bool = False) -> str:
    from serving.api.keys import create_key

    with db.transaction() as conn:
        return create_key(conn, f"{name}-{uuid.uuid4().hex[:8]}", groups, admin=admin, actor="tests").key


@pytest.fixture(scope="session")
def ingest_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest-root")


@pytest.fixture(scope="session")
def pr_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty git repository standing for the server's clone of PR_REPOSITORY; tests commit into it."""
    import subprocess

    repo = tmp_path_factory.mktemp("pr-clone")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return repo


@pytest.fixture(scope="session")
def publish_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data-products")


@pytest.fixture(scope="session")
def api_settings(settings: Any, ingest_root: Path, pr_clone: Path, publish_root: Path) -> Any:
    return settings.model_copy(
        update={
            "github_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "api_ingest_root": ingest_root,
            "github_repositories": {PR_REPOSITORY: pr_clone},
            "copilot_publish_root": publish_root,
        }
    )


@pytest.fixture(scope="session")
def live(api_settings: Any, db: Any, embedder: Any, samples: Any) -> Iterator[LiveServer]:
    from serving.api.app import create_app

    server = LiveServer(create_app(api_settings, db=db, embedder=embedder))
    yield server
    server.close()


@pytest.fixture(scope="session")
def keys(db: Any) -> Keys:
    return Keys(
        sales=make_key(db, "sales", ["sales"]),
        finance=make_key(db, "finance", ["finance"]),
        sre=make_key(db, "sre", ["sre"]),
        admin=make_key(db, "admin", [], admin=True),
        public=make_key(db, "public", []),
    )


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sse_events(body: str) -> list[tuple[str, str]]:
    """(event name, data) of each event in an SSE body."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events
