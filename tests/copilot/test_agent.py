"""The agent on the real stack: embedded PostgreSQL (standards retrieved with citations, checkpointer),
DuckDB, subprocesses; approval interrupts, and a thread resumed after the process restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.copilot.helpers import OWNER, case_data


def _draft_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["draft", str(data), "--name", "customers", "--domain", "sales", "--owner", OWNER, "--out", str(out), *extra]


def test_draft_with_approve_publishes_a_valid_cited_product(tmp_path: Path, cli_env: Path, samples: list[Any]) -> None:
    out = tmp_path / "product"
    code, stdout, stderr = run_cli(*_draft_args(case_data("customers_messy", tmp_path), out, "--approve", "--json"))
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["valid"] is True and result["status"] == "published" and result["revisions"] == 0
    assert {"datacontract.odcs.yaml", "README.md", "validation.json", "data/customers.parquet"} <= set(
        result["artifacts"]
    )
    assert all(set(c) == {"name", "passed", "reason"} for c in result["checks"])
    card = (out / "README.md").read_text()
    assert "dp://sales/customers/v1" in card and "[mesh-standards: slo-defaults.md]" in card
    assert "[mesh-standards: data-classification-policy.md]" in card
    assert "snake_case" in card and "[mesh-standards: naming-conventions.md]" in card
    assert json.loads((out / "validation.json").read_text())["valid"] is True

    code, stdout, _ = run_cli("validate", str(out), "--json")
    assert code == 0 and json.loads(stdout)["valid"] is True


def _meshpilot(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHPILOT_HOME": str(home), "MESHPILOT_EMBED_WORKERS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "serving.cli.app", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.slow
def test_a_thread_interrupted_at_approval_resumes_after_a_restart(
    tmp_path: Path, home: Path, samples: list[Any]
) -> None:
    out = tmp_path / "product"
    first = _meshpilot(home, *_draft_args(case_data("shipments", tmp_path), out, "--json"))
    assert first.returncode == 0, first.stderr[-2000:]
    waiting = json.loads(first.stdout)
    assert waiting["status"] == "awaiting_approval" and waiting["valid"] is True and waiting["artifacts"] == []
    assert not out.exists()  # nothing before approval

    # A new process: the state comes from the PostgreSQL checkpointer, not from memory.
    second = _meshpilot(home, "draft", "--thread", waiting["thread"], "--approve", "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    done = json.loads(second.stdout)
    assert done["status"] == "published" and done["thread"] == waiting["thread"]
    assert (out / "datacontract.odcs.yaml").is_file() and (out / "data" / "customers.parquet").is_file()


def test_rejection_writes_nothing(tmp_path: Path, db: Any) -> None:
    from langgraph.types import Command

    from copilot.checkpoints import postgres_checkpointer
    from copilot.graph import GRAPH_NAME, builder
    from copilot.state import Context

    out = tmp_path / "product"
    with postgres_checkpointer(db) as saver:
        graph = builder.compile(checkpointer=saver, name=GRAPH_NAME)
        config: Any = {"configurable": {"thread_id": f"reject-{tmp_path.name}"}}
        inputs = {"data": str(case_data("events")), "name": "vehicle_events", "domain": "fleet", "owner": OWNER}
        first = graph.invoke({**inputs, "out": str(out), "auto_approve": False}, config, context=Context())
        assert "__interrupt__" in first
        final = graph.invoke(Command(resume={"approved": False}), config, context=Context())
    assert final["status"] == "rejected" and not out.exists()


def test_draft_from_a_postgresql_table(tmp_path: Path, cli_env: Path, db: Any, samples: list[Any]) -> None:
    from copilot.checkpoints import conninfo

    with db.transaction() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS copilot_src")
        conn.exec_driver_sql("DROP TABLE IF EXISTS copilot_src.depots")
        conn.exec_driver_sql(
            "CREATE TABLE copilot_src.depots (depot_id int PRIMARY KEY, city text NOT NULL, opened date, "
            "capacity_count int)"
        )
        conn.exec_driver_sql(
            "INSERT INTO copilot_src.depots VALUES (1, 'Chicago', '2019-04-01', 120), (2, 'Denver', NULL, 80), "
            "(3, 'Austin', '2021-09-15', NULL)"
        )
    out = tmp_path / "product"
    code, stdout, stderr = run_cli(
        "draft", "--source", conninfo(db), "--table", "copilot_src.depots", "--name", "depots",
        "--domain", "warehouse_ops", "--owner", OWNER, "--out", str(out), "--approve", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["valid"] is True
    import yaml

    contract = yaml.safe_load((out / "datacontract.odcs.yaml").read_text())
    source = next(s for s in contract["servers"] if s["server"] == "source")
    assert source["type"] == "postgres" and source["schema"] == "copilot_src"
    types = {p["name"]: (p["logicalType"], p["required"]) for p in contract["schema"][0]["properties"]}
    assert types == {
        "depot_id": ("integer", True),
        "city": ("string", True),
        "opened_date": ("date", False),
        "capacity_count": ("integer", False),
    }
    code, _, stderr = run_cli(
        "draft", "--source", conninfo(db), "--table", "copilot_src.nope", "--name", "x", "--domain", "sales",
        "--owner", OWNER, "--out", str(tmp_path / "x"),
    )  # fmt: skip
    assert code == 2 and "cannot read copilot_src.nope" in stderr and not (tmp_path / "x").exists()
