"""schemathesis against the live server's /openapi.json: no generated request gets a 5xx.

On a database of its own (the generated admin requests create products and ingest files), with an
admin key so every operation is reachable, webhooks signed with the wrong secret included.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.serving.api.conftest import LiveServer, make_key

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow
@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="the schemathesis CLI is not installed in this environment")
def test_no_generated_request_gets_a_server_error(tmp_path: Path, embedder: Any) -> None:
    from rag.database import open_database, stop_embedded
    from rag.ingestion import ingest_directory
    from rag.products import ProductSpec
    from rag.settings import Settings
    from serving.api.app import create_app

    home, root, docs = tmp_path / "home", tmp_path / "ingest-root", tmp_path / "ingest-root" / "docs"
    docs.mkdir(parents=True)
    (docs / "slo.md").write_text("# SLOs\n\nBatch data products must be refreshed at least every 24 hours.\n")
    # No rate limit to speak of: with the default, most generated requests got 429 and tested nothing else.
    settings = Settings(
        home=home,
        embed_workers=1,
        github_webhook_secret=SecretStr("fuzz-secret"),
        api_ingest_root=root,
        api_rate_limit_per_minute=1_000_000,
    )
    db = open_database(settings)
    server = None
    try:
        ingest_directory(db, settings, ProductSpec("fuzz-standards", classification="public"), docs, embedder=embedder)
        key = make_key(db, "fuzz-admin", ["sre", "sales"], admin=True)
        server = LiveServer(create_app(settings, db=db, embedder=embedder))
        done = subprocess.run(
            [
                str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
                "--checks", "not_a_server_error",
                "--header", f"Authorization: Bearer {key}",
                "--phases", "examples,coverage,fuzzing",
                "--max-examples", "60",
                "--seed", "20261126",
                "--workers", "1",
                "--generation-database", "none",
                "--request-timeout", "30",
                "--no-color",
                "--report", "junit", "--report-dir", str(tmp_path / "report"),
            ],
            capture_output=True, text=True, timeout=400, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        tested = re.search(r"Tested: (\d+)", done.stdout)
        assert tested and int(tested.group(1)) >= 10, done.stdout  # every operation was exercised
        summary = re.search(r"\d+ generated, \d+ passed[^\n]*", done.stdout)
        assert summary, done.stdout
        print(f"schemathesis: {tested.group(0)} operations; {summary.group(0)}")  # shown with pytest -s
    finally:
        if server is not None:
            server.close()
        db.close()
        stop_embedded(home.resolve() / "pg")
