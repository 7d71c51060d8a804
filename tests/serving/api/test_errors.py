"""Every failure is a JSON body with a stable `code`: auth, limits, validation, unknown things."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from serving.api.answer_workers import _answer
from serving.api.errors import database_failure
from serving.api.key_cache import TTL_S
from tests.serving.api.conftest import Keys, LiveServer, bearer, make_key

ASK = {"question": "How often do batch data products need to be refreshed?"}


def code_of(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/ask"),
        ("GET", "/v1/knowledge-products"),
        ("POST", "/v1/knowledge-products"),
        ("POST", "/v1/ingest"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ],
)
def test_every_v1_route_needs_a_key(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path, json={})
    assert r.status_code == 401 and code_of(r) == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer mp_wrong", "Bearer " + "mp_" + "A" * 43, "Basic dXNlcjpwYXNz", "Bearer"])
def test_bad_keys_are_401(client: httpx.Client, header: str) -> None:
    r = client.post("/v1/ask", json=ASK, headers={"Authorization": header})
    assert r.status_code == 401 and code_of(r) == "unauthorized"


def test_revoked_key_is_401(client: httpx.Client, db: Any) -> None:
    from serving.api.keys import list_keys, revoke_key

    key = make_key(db, "short-lived", [])
    assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    with db.transaction() as conn:
        name = next(k.name for k in list_keys(conn) if key.startswith(k.prefix) and k.revoked_at is None)
        revoke_key(conn, name, actor="tests")
    # The server hears of it from PostgreSQL (serving/api/key_cache.py): at once, TTL_S at the very most.
    deadline = time.monotonic() + TTL_S
    while (r := client.get("/v1/models", headers=bearer(key))).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_admin_routes_are_403_for_other_keys(client: httpx.Client, keys: Keys) -> None:
    r = client.post("/v1/knowledge-products", json={"name": "x"}, headers=bearer(keys.sales))
    assert r.status_code == 403 and code_of(r) == "forbidden"
    r = client.post("/v1/ingest", json={"product": "x", "path": "."}, headers=bearer(keys.sales))
    assert r.status_code == 403 and code_of(r) == "forbidden"


def test_malformed_json_is_400(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/ask",
        content=b'{"question": "unterminated',
        headers={**bearer(keys.sales), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and code_of(r) == "malformed_json"


@pytest.mark.parametrize(
    "body",
    [
        {"question": 42},
        {"question": "ok", "stream": "yes"},
        {"question": ""},
        {},
        {"question": "ok", "unknown": 1},
        {"question": "nul \x00 byte"},
        {"question": "ok", "product": "Not A Name"},
        [1, 2],
    ],
)
def test_wrong_types_are_422(client: httpx.Client, keys: Keys, body: Any) -> None:
    r = client.post("/v1/ask", json=body, headers=bearer(keys.sales))
    assert r.status_code == 422 and code_of(r) == "validation_error"
    assert r.json()["error"]["details"]


def test_blank_or_long_question_is_400(client: httpx.Client, keys: Keys) -> None:
    r = client.post("/v1/ask", json={"question": "   "}, headers=bearer(keys.sales))
    assert r.status_code == 400 and code_of(r) == "bad_request"
    r = client.post("/v1/ask", json={"question": "x" * 5000}, headers=bearer(keys.sales))
    assert r.status_code == 400 and "longer than" in r.json()["error"]["message"]


def test_oversized_body_is_413_declared_or_streamed(client: httpx.Client, keys: Keys) -> None:
    big = b'{"question": "' + b"x" * 1_100_000 + b'"}'
    headers = {**bearer(keys.sales), "Content-Type": "application/json"}
    r = client.post("/v1/ask", content=big, headers=headers)
    assert r.status_code == 413 and code_of(r) == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    r = client.post("/v1/ask", content=chunks(), headers=headers)
    assert r.status_code == 413 and code_of(r) == "payload_too_large"
    # The connection and the server are fine afterwards.
    assert client.post("/v1/ask", json={"question": "What is a data product?"}, headers=bearer(keys.sales)).is_success


def test_unknown_route_and_method_and_product(client: httpx.Client, keys: Keys) -> None:
    r = client.get("/v1/nothing-here", headers=bearer(keys.sales))
    assert r.status_code == 404 and code_of(r) == "not_found"
    r = client.delete("/v1/ask", headers=bearer(keys.sales))
    assert r.status_code == 405 and code_of(r) == "method_not_allowed"
    r = client.post("/v1/ask", json={**ASK, "product": "no-such-product"}, headers=bearer(keys.sales))
    assert r.status_code == 404 and code_of(r) == "not_found"


def test_unknown_model_is_404_model_not_found(client: httpx.Client, keys: Keys) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer(keys.sales),
    )
    assert r.status_code == 404 and code_of(r) == "model_not_found"
    assert "meshpilot-rag" in r.json()["error"]["message"]


def test_raw_socket_garbage_gets_an_http_error_not_a_crash(live: LiveServer) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 4")


def test_rate_limit_is_429_with_retry_after(api_settings: Any, db: Any, embedder: Any) -> None:
    from serving.api.app import create_app

    limited = LiveServer(
        create_app(api_settings.model_copy(update={"api_rate_limit_per_minute": 3}), db=db, embedder=embedder)
    )
    try:
        key = make_key(db, "limited", [])
        with httpx.Client(base_url=limited.url) as http:
            statuses = [http.get("/v1/models", headers=bearer(key)).status_code for _ in range(3)]
            r = http.get("/v1/models", headers=bearer(key))
            other = make_key(db, "unlimited", [])
            assert http.get("/v1/models", headers=bearer(other)).status_code == 200  # per key, not global
            metrics = http.get("/metrics").text
    finally:
        limited.close()
    assert statuses == [200, 200, 200]
    assert r.status_code == 429 and code_of(r) == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "meshpilot_rate_limited_total 1.0" in metrics


def test_cors_is_closed_by_default(client: httpx.Client) -> None:
    r = client.options("/v1/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_opens_only_to_configured_origins(api_settings: Any, db: Any, embedder: Any) -> None:
    from serving.api.app import create_app

    settings = api_settings.model_copy(update={"api_cors_origins": ["https://chat.example"]})
    server = LiveServer(create_app(settings, db=db, embedder=embedder))
    try:
        with httpx.Client(base_url=server.url) as http:
            preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
            allowed = http.options("/v1/ask", headers={"Origin": "https://chat.example", **preflight})
            denied = http.options("/v1/ask", headers={"Origin": "https://evil.example", **preflight})
    finally:
        server.close()
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example"
    assert "access-control-allow-origin" not in denied.headers


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (sa.exc.TimeoutError("QueuePool limit reached"), 503, "overloaded"),
        (sa.exc.OperationalError("SELECT 1", None, ConnectionError("server closed")), 503, "database_unavailable"),
        (sa.exc.DataError("SELECT 1", None, ValueError("integer out of range")), 400, "bad_request"),
        (sa.exc.ProgrammingError("SELEC 1", None, SyntaxError("syntax")), None, None),
    ],
)
def test_database_failures_get_one_answer_in_the_app_and_in_the_answer_workers(
    exc: Exception, status: int | None, code: str | None
) -> None:
    answer = database_failure(exc)
    if status is None:
        assert answer is None
    else:
        assert answer is not None and (answer.status, answer.code) == (status, code)

    class Failing:  # a service whose database fails this way
        def ask(self, *_: Any, **__: Any) -> Any:
            raise exc

    kind, payload = _answer(Failing(), ("q", ["sre"], None, None))
    if status is None:
        assert (kind, payload) == ("failed", type(exc).__name__)  # a bug: a 500, its name only
    else:
        assert kind == "api" and payload[:2] == (status, code)
