"""The real `openai` SDK against /v1/chat/completions and /v1/models, plain and streaming, both models."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.copilot.helpers import FIXTURES, OWNER
from tests.serving.api.conftest import Keys, LiveServer, bearer

QUESTION = "How fast does on-call have to acknowledge a SEV1?"


def sdk(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=60)


def test_models_lists_both_models(live: LiveServer, keys: Keys) -> None:
    assert [m.id for m in sdk(live, keys.sre).models.list()] == ["meshpilot-rag", "meshpilot-copilot"]


def test_plain_completion_renders_citations_and_returns_them(live: LiveServer, keys: Keys) -> None:
    completion = sdk(live, keys.sre).chat.completions.create(
        model="meshpilot-rag",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
    )
    text = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop"
    assert "15 minutes" in text and "[1]" in text
    # Other tests may add products holding the same runbook, so the product name is not asserted.
    assert "\n\nSources:\n[1] " in text and "/oncall-escalation.md — “" in text
    extra = completion.model_extra or {}
    assert extra["grounded"] is True
    assert extra["citations"][0]["source"] == "oncall-escalation.md" and extra["citations"][0]["n"] == 1


def test_streaming_completion_concatenates_to_the_plain_text(live: LiveServer, keys: Keys) -> None:
    client = sdk(live, keys.sre)
    plain = client.chat.completions.create(model="meshpilot-rag", messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(
        model="meshpilot-rag", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == plain.choices[0].message.content
    assert len(chunks) > 5 and chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].model_extra or {})["citations"][0]["source"] == "oncall-escalation.md"


def test_content_parts_and_history_use_the_last_user_message(live: LiveServer, keys: Keys) -> None:
    completion = sdk(live, keys.public).chat.completions.create(
        model="meshpilot-rag",
        messages=[
            {"role": "user", "content": "What is the parental leave policy?"},
            {"role": "assistant", "content": "I don't know."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "How often do batch data products need to be refreshed?"}],
            },
        ],
    )
    assert "24 hours" in (completion.choices[0].message.content or "")


def test_sdk_errors_carry_the_codes(live: LiveServer, keys: Keys) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk(live, keys.sre).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        sdk(live, "mp_not-a-key").models.list()
    assert unauthorized.value.code == "unauthorized"
    with pytest.raises(openai.UnprocessableEntityError):
        sdk(live, keys.sre).chat.completions.create(
            model="meshpilot-rag", messages=[{"role": "assistant", "content": "x"}]
        )


def new_thread(live: LiveServer, key: str) -> str:
    body = {
        "name": f"shipments_{uuid.uuid4().hex[:8]}",
        "domain": "warehouse_ops",
        "owner": OWNER,
        "content": (FIXTURES / "shipments" / "data.csv").read_text(),
    }
    r = httpx.post(f"{live.url}/v1/copilot/threads", json=body, headers=bearer(key), timeout=120)
    assert r.status_code == 201, r.text
    return str(r.json()["thread"])


def test_the_copilot_answers_questions_and_explains_how_to_draft(live: LiveServer, keys: Keys) -> None:
    client = sdk(live, keys.sre)
    answer = client.chat.completions.create(model="meshpilot-copilot", messages=[{"role": "user", "content": QUESTION}])
    extra = answer.model_extra or {}
    assert "15 minutes" in (answer.choices[0].message.content or "") and extra["grounded"] is True
    assert extra["citations"][0]["source"] == "oncall-escalation.md" and extra["thread"] is None

    for message in ("Draft a contract for my orders.csv", "approve"):
        help_reply = client.chat.completions.create(
            model="meshpilot-copilot", messages=[{"role": "user", "content": message}]
        )
        text = help_reply.choices[0].message.content or ""
        assert "POST /v1/copilot/threads" in text and "`thread`" in text
        assert (help_reply.model_extra or {})["citations"] == []


def test_the_copilot_acts_on_a_thread_named_in_the_extra_body(live: LiveServer, keys: Keys) -> None:
    thread = new_thread(live, keys.admin)
    client = sdk(live, keys.admin)
    status = client.chat.completions.create(
        model="meshpilot-copilot", messages=[{"role": "user", "content": "status"}], extra_body={"thread": thread}
    )
    assert "awaiting approval" in (status.choices[0].message.content or "")
    assert (status.model_extra or {})["thread"]["status"] == "awaiting_approval"

    stream = client.chat.completions.create(
        model="meshpilot-copilot",
        messages=[{"role": "user", "content": "approve"}],
        extra_body={"thread": thread},
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("warehouse_ops/shipments_") and ": published. published " in text
    last = chunks[-1].model_extra or {}
    assert last["thread"]["status"] == "published" and "datacontract.odcs.yaml" in last["thread"]["artifacts"]
    assert last["grounded"] is True and last["citations"] == []


def test_copilot_errors_carry_the_codes(live: LiveServer, keys: Keys) -> None:
    thread = new_thread(live, keys.sales)
    with pytest.raises(openai.NotFoundError) as other_key:  # another key's thread does not exist for it
        sdk(live, keys.finance).chat.completions.create(
            model="meshpilot-copilot", messages=[{"role": "user", "content": "status"}], extra_body={"thread": thread}
        )
    assert other_key.value.code == "not_found"
    with pytest.raises(openai.PermissionDeniedError):  # approving publishes: admin keys only
        sdk(live, keys.sales).chat.completions.create(
            model="meshpilot-copilot", messages=[{"role": "user", "content": "approve"}], extra_body={"thread": thread}
        )
    with pytest.raises(openai.BadRequestError):  # `thread` belongs to the copilot
        sdk(live, keys.sales).chat.completions.create(
            model="meshpilot-rag", messages=[{"role": "user", "content": "status"}], extra_body={"thread": thread}
        )
    with pytest.raises(openai.UnprocessableEntityError):
        sdk(live, keys.sales).chat.completions.create(
            model="meshpilot-copilot", messages=[{"role": "user", "content": "hi"}], extra_body={"thread": "../x"}
        )
