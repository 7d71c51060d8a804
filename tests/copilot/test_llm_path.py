"""The LLM path against a local OpenAI-protocol test server: bad drafts are rejected and fed back; the
loop ends valid after revisions, or stops with a clear report and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from copilot import runs
from copilot.state import MAX_REVISIONS, Context, InputState
from rag.chat_models import OpenAIChatModel
from tests.conftest import run_cli
from tests.copilot.helpers import OWNER, case_data
from tests.openai_server import OpenAITestServer

GOOD = """```yaml
purpose: Customer master data for loyalty analytics.
descriptions:
  customer_id: Identifier of the customer in the CRM.
  loyalty_tier: Loyalty programme tier.
rules:
  - column: customer_id
    description: Customer ids are positive.
    sql: SELECT COUNT(*) FROM {table} WHERE customer_id <= 0
```"""
NOT_YAML = "descriptions: [unclosed"
UNKNOWN_COLUMN = "descriptions:\n  shoe_size: Not a column.\nrules: []\n"
DESTRUCTIVE = "descriptions: {}\nrules:\n  - column: customer_id\n    sql: DELETE FROM customers\n"
FAILS_ON_DATA = (
    "descriptions: {}\nrules:\n  - column: customer_id\n"
    "    sql: SELECT COUNT(*) FROM {table} WHERE customer_id > 1001\n"
)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    srv = OpenAITestServer()
    yield srv
    srv.close()


def _run(server: OpenAITestServer, out: Path) -> runs.DraftRun:
    model = OpenAIChatModel(server.base_url, "test-model", None, timeout_s=10)
    inputs: InputState = {
        "data": str(case_data("customers_messy")),
        "name": "customers",
        "domain": "sales",
        "owner": OWNER,
        "out": str(out),
        "auto_approve": True,
    }
    return runs.start(inputs, Context(chat_model=model), InMemorySaver())


def test_bad_drafts_are_fed_back_until_a_valid_one(server: OpenAITestServer, tmp_path: Path) -> None:
    server.replies.extend([NOT_YAML, UNKNOWN_COLUMN, GOOD])
    out = tmp_path / "product"
    run = _run(server, out)
    assert run.valid and run.status == "published" and run.revisions == 2
    contract = (out / "datacontract.odcs.yaml").read_text()
    assert "Identifier of the customer in the CRM." in contract and "customer_id <= 0" in contract
    # The feedback reached the model: the third prompt names the unknown column.
    third = server.requests[2]["body"]["messages"][1]["content"]
    assert "shoe_size" in third and "copilot_draft" not in third


def test_only_bad_drafts_stop_with_a_clear_report_and_nothing_written(server: OpenAITestServer, tmp_path: Path) -> None:
    server.replies.extend([DESTRUCTIVE, FAILS_ON_DATA, NOT_YAML, UNKNOWN_COLUMN])
    out = tmp_path / "product"
    run = _run(server, out)
    assert not run.valid and run.status == "invalid" and run.revisions == MAX_REVISIONS
    assert "nothing was written" in run.message and f"after {MAX_REVISIONS} revision(s)" in run.message
    assert not out.exists() and not list(tmp_path.iterdir())
    asked = [r["body"]["messages"][1]["content"] for r in server.requests]
    assert any("DELETE is not allowed" in a for a in asked)  # destructive SQL was fed back
    assert any("tests_executed" in a and "violation" in a for a in asked)  # a rule failing on the data too


def test_cli_llm_path_exits_1_and_writes_nothing(
    server: OpenAITestServer, tmp_path: Path, cli_env: Path, samples: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.responder = lambda messages: NOT_YAML
    monkeypatch.setenv("MESHPILOT_LLM_BASE_URL", server.base_url)
    out = tmp_path / "product"
    code, stdout, _ = run_cli(
        "draft", str(case_data("customers_messy")), "--name", "customers", "--domain", "sales",
        "--owner", OWNER, "--out", str(out), "--approve", "--json",
    )  # fmt: skip
    result = json.loads(stdout)
    assert code == 1 and result["valid"] is False and result["artifacts"] == [] and not out.exists()
    assert any(c["name"] == "model_reply_yaml" and not c["passed"] for c in result["checks"])
