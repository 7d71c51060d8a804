from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

INGEST_KEYS = {
    "product",
    "documents_added",
    "documents_updated",
    "documents_unchanged",
    "documents_deleted",
    "chunks",
    "embedding_model",
}
PRODUCT_KEYS = {
    "name",
    "domain",
    "owner",
    "classification",
    "groups",
    "version",
    "documents",
    "chunks",
    "embedding_model",
}
CITATION_KEYS = {"n", "product", "source", "title", "chunk_id", "quote"}


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`meshpilot --help`, `products` or `db status` must not pay for guardrails-ai, langgraph, nltk or the
    model runtimes (7.8 s of imports when they came in at start-up, 1.0 s without): commands import
    what they run."""
    probe = (
        "import sys, serving.cli.app\n"
        "heavy = ['guardrails', 'langgraph', 'nltk', 'torch', 'onnxruntime', 'llama_index', 'ragas', 'duckdb']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "args",
    [[], ["ingest"], ["products"], ["ask"], ["demo"], ["db"], ["db", "status"], ["db", "stop"], ["bench", "ingest"]],
)
def test_help_everywhere(args: list[str]) -> None:
    code, out, _ = run_cli(*args, "--help")
    assert code == 0 and "Usage" in out


def test_ingest_twice_then_edit_and_delete(tmp_path: Path, cli_env: Path, embedder: Any) -> None:
    for name in ("a.md", "b.md", "c.txt"):
        (tmp_path / name).write_text(f"# {name}\n\nThe {name} document describes rule {name}.\n")
    args = ["ingest", str(tmp_path), "--product", "cli-sync", "--classification", "public", "--json"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    first = json.loads(out)
    assert first.keys() >= INGEST_KEYS
    assert (first["documents_added"], first["chunks"]) == (3, 3)

    code, out, _ = run_cli(*args)
    second = json.loads(out)
    assert (second["documents_unchanged"], second["documents_added"], second["documents_updated"]) == (3, 0, 0)

    (tmp_path / "a.md").write_text("# a\n\nEdited: rule a now applies to every table.\n")
    (tmp_path / "b.md").unlink()
    code, out, _ = run_cli(*args)
    third = json.loads(out)
    assert (third["documents_updated"], third["documents_deleted"], third["documents_unchanged"]) == (1, 1, 1)
    assert third["chunks"] == 2


def test_products_json_shape(cli_env: Path, samples: Any) -> None:
    code, out, _ = run_cli("products", "--json")
    assert code == 0
    products = {p["name"]: p for p in json.loads(out)["products"]}
    assert all(set(p) == PRODUCT_KEYS for p in products.values())
    finance = products["finance-contracts"]
    assert (finance["classification"], finance["groups"], finance["domain"]) == ("restricted", ["finance"], "finance")
    assert finance["documents"] == 4 and finance["chunks"] > 0
    code, out, _ = run_cli("products", "--groups", "sales", "--json")
    visible = {p["name"] for p in json.loads(out)["products"]}
    assert "finance-contracts" not in visible and {"mesh-standards", "sales-analytics"} <= visible


def test_ask_json_shape_and_grounding(cli_env: Path, samples: Any) -> None:
    code, out, err = run_cli("ask", "How long can a data product name be?", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert {"answer", "grounded", "citations", "retrieval_ms"} <= answer.keys()
    assert answer["grounded"] and answer["citations"][0]["n"] == 1
    assert all(set(c) == CITATION_KEYS for c in answer["citations"])
    assert answer["citations"][0]["source"] == "naming-conventions.md"

    code, out, _ = run_cli("ask", "What is the company's parental leave policy?", "--json")
    assert code == 0 and json.loads(out)["grounded"] is False


def test_ask_prints_numbered_citations(cli_env: Path, samples: Any) -> None:
    code, out, _ = run_cli("ask", "How fast does on-call have to acknowledge a SEV1?", "--groups", "sre")
    assert code == 0
    assert "[1]" in out and "platform-runbooks/oncall-escalation.md" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/no/such/folder", "--product", "x"], "folder not found"),
        (["ask", "   "], "question is empty"),
        (["ask", ""], "question is empty"),
        (["ingest", ".", "--product", "Bad Name"], "invalid product name"),
        (["ingest", ".", "--product", "x", "--classification", "secret"], "invalid classification"),
        (["ask", "q", "--groups", "a b"], "invalid group"),
        (["ingest"], "Missing"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(cli_env: Path, args: list[str], message: str) -> None:
    code, out, err = run_cli(*args)
    assert code == 2
    assert message in err + out


def test_unreachable_database_exits_1_naming_the_masked_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHPILOT_DATABASE_URL", "postgresql://app:topsecret@127.0.0.1:1/mesh")
    code, _, err = run_cli("products")
    assert code == 1
    assert "127.0.0.1:1" in err and "***" in err and "topsecret" not in err


def test_db_status_json(cli_env: Path, db: Any) -> None:
    code, out, _ = run_cli("db", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["running"] and status["embedded"]
    assert status["server_version"].startswith("18") and status["schema_version"] == status["schema_latest"]


def test_a_fresh_process_re_ingesting_an_unchanged_folder_loads_no_model(tmp_path: Path, cli_env: Path) -> None:
    """Nothing to embed: the sync must not need (or load) an embedder at all."""
    import os
    import subprocess
    import sys

    (tmp_path / "a.md").write_text("# A\n\nUnchanged text.\n")
    args = ["ingest", str(tmp_path), "--product", "cli-unchanged", "--classification", "public", "--json"]
    assert run_cli(*args)[0] == 0
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from serving.cli.app import main; main(sys.argv[1:]); ", *args],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents_unchanged"] == 1
