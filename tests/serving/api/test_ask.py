from __future__ import annotations

import json
from typing import Any

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


def test_questions_beyond_the_concurrency_limit_wait_their_turn(
    api_settings: Any, db: Any, embedder: Any, samples: Any, keys: Keys
) -> None:
    """MESHPILOT_ASK_CONCURRENCY: at most that many answers are computed at once, whichever route asked
    (/v1/ask, or the copilot's chat through /v1/chat/completions); the rest queue and are all answered."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from serving.api.app import create_app
    from tests.serving.api.conftest import LiveServer

    app = create_app(api_settings.model_copy(update={"ask_concurrency": 2}), db=db, embedder=embedder)
    server = LiveServer(app)
    try:
        service = app.state.api.service
        real_ask, lock = service.ask, threading.Lock()
        running, most = 0, 0

        def counted_ask(*args: Any, **kwargs: Any) -> Any:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                return real_ask(*args, **kwargs)
            finally:
                with lock:
                    running -= 1

        object.__setattr__(service, "ask", counted_ask)

        question = "Who approves a schema change?"

        def ask(i: int) -> str:
            with httpx.Client(base_url=server.url, timeout=60, headers=bearer(keys.sales)) as http:
                if i % 2:
                    chat = {"model": "meshpilot-copilot", "messages": [{"role": "user", "content": question}]}
                    response = http.post("/v1/chat/completions", json=chat)
                    assert response.status_code == 200, response.text
                    return str(response.json()["citations"][0]["source"])
                response = http.post("/v1/ask", json={"question": question})
                assert response.status_code == 200, response.text
                return str(response.json()["citations"][0]["source"])

        with ThreadPoolExecutor(8) as pool:
            sources = list(pool.map(ask, range(8)))
        assert len(set(sources)) == 1
        assert most == 2  # eight in flight, two answered at a time
    finally:
        server.close()
