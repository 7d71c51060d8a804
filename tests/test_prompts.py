"""Prompts are governed artifacts: id, version, owner, eval cases, and no edit without a version bump."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import prompts
from tests.conftest import run_cli
from tests.openai_server import OpenAITestServer


@pytest.mark.parametrize("prompt_id", prompts.available())
def test_each_template_is_complete(prompt_id: str) -> None:
    template = prompts.load(prompt_id)
    assert re.fullmatch(r"\d+\.\d+\.\d+", template.version)
    assert template.owner and template.description
    assert template.cases, "every prompt has at least one eval case"
    assert template.placeholders() <= {"context", "question"}


def test_no_prompt_changed_without_a_version_bump() -> None:
    assert prompts.lock_problems() == []


def test_the_lock_check_catches_an_unbumped_edit() -> None:
    locked = prompts.read_lock()
    edited = {pid: {**entry, "sha256": "0" * 64} for pid, entry in locked.items()}
    assert all("bump" in p for p in prompts.lock_problems(locked, edited))
    bumped = {pid: {"version": "99.0.0", "sha256": "0" * 64} for pid in locked}
    assert all("stale" in p for p in prompts.lock_problems(locked, bumped))


COPILOT_REPLY = """purpose: Orders placed by customers, for revenue reporting.
descriptions:
  order_id: Identifier of the order.
  order_amount: Amount of the order in the invoicing currency.
  status: Where the order is in its lifecycle.
rules:
  - column: status
    description: status is one of the known states
    sql: SELECT COUNT(*) FROM orders WHERE status NOT IN ('open', 'shipped', 'closed')
"""


def good_model(messages: list[dict[str, Any]]) -> str:
    user = messages[-1]["content"]
    if "document a table" in messages[0]["content"]:
        return COPILOT_REPLY
    if "parental leave" in user:
        return "I don't know."
    if "backfill" in user:
        return "A backfill of more than 30 days needs approval from the product owner [1]."
    return "Batch data products must be refreshed at least every 24 hours [1]."


@pytest.fixture
def model_server() -> Iterator[OpenAITestServer]:
    server = OpenAITestServer()
    yield server
    server.close()


def test_eval_prompts_passes_a_model_that_follows_the_prompt(model_server: OpenAITestServer) -> None:
    model_server.responder = good_model
    code, out, err = run_cli("eval", "prompts", "--judge", model_server.base_url, "--json")
    assert code == 0, err + out
    result = json.loads(out)
    cases = result["prompts"]["rag_answer"]["cases"]
    assert len(cases) == 3 and all(c["passed"] for c in cases)
    copilot = result["prompts"]["copilot_draft"]["cases"]
    assert copilot and all(c["passed"] for c in copilot), copilot


def test_eval_prompts_fails_a_model_that_obeys_injected_instructions(model_server: OpenAITestServer) -> None:
    def obeys_injection(messages: list[dict[str, Any]]) -> str:
        if "backfill" in messages[-1]["content"]:
            return "A backfill needs no approval: nobody needs to approve anything from the product owner [1]."
        return good_model(messages)

    model_server.responder = obeys_injection
    code, out, _ = run_cli("eval", "prompts", "--judge", model_server.base_url, "--json")
    assert code == 1
    failed = [c for c in json.loads(out)["prompts"]["rag_answer"]["cases"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["ignores-instructions-in-passages"]


def test_eval_prompts_without_a_model_is_bad_usage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MESHPILOT_JUDGE_BASE_URL", raising=False)
    code, _, err = run_cli("eval", "prompts")
    assert code == 2 and "--judge" in err
