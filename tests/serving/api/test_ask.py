from __future__ import annotations

import json

import httpx

from tests.serving.api.conftest import Keys, bearer, sse_events

CITATION_KEYS = {"n", "product", "source", "title", "chunk_id", "quote"}


def test_ask_json_is_grounded_with_citations(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/ask",
        json={"question": "How often do batch data products need to be refreshed?"},
        headers=bearer(keys.public),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"answer", "grounded", "citations", "retrieval_ms", "guard"}
    assert body["grounded"] and "24 hours [1]" in body["answer"]
    assert {"input_ms", "context_ms", "output_ms"} <= set(body["guard"]) and "blocked" not in body["guard"]
    assert set(body["citations"][0]) == CITATION_KEYS
    assert body["citations"][0]["source"] == "slo-defaults.md"
    assert r.headers["x-request-id"]


def test_ask_streams_server_sent_events(client: httpx.Client, keys: Keys) -> None:
    question = {"question": "How fast does on-call have to acknowledge a SEV1?", "stream": True}
    with client.stream("POST", "/v1/ask", json=question, headers=bearer(keys.sre)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = sse_events(body)
    deltas = [json.loads(d)["text"] for name, d in events if name == "answer.delta"]
    name, done = events[-1]
    assert name == "answer.done" and len(deltas) > 3
    final = json.loads(done)
    assert "".join(deltas) == final["answer"] and final["grounded"]
    assert final["citations"][0]["source"] == "oncall-escalation.md"


def test_accept_header_asks_for_a_stream_too(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/ask",
        json={"question": "How often do batch data products need to be refreshed?"},
        headers={**bearer(keys.public), "Accept": "text/event-stream"},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert sse_events(r.text)[-1][0] == "answer.done"


def test_unanswerable_question_is_an_honest_refusal(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/ask", json={"question": "What is the company's parental leave policy?"}, headers=bearer(keys.sales)
    )
    assert r.status_code == 200
    assert r.json()["grounded"] is False and r.json()["citations"] == []


def test_product_filter(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/ask",
        json={"question": "How is churn defined?", "product": "sales-analytics"},
        headers=bearer(keys.sales),
    )
    assert r.status_code == 200
    assert {c["product"] for c in r.json()["citations"]} <= {"sales-analytics"}
