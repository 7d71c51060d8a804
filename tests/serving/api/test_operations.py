"""/healthz, /readyz (database and models), /metrics, the web page's headers, and secrets never logged."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.serving.api.conftest import Keys, LiveServer, bearer


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert r.json()["status"] == "ready"
    assert set(checks) == {"database", "embedding_model", "chat_model", "answer_workers"}
    assert all(c["ok"] for c in checks.values())
    assert "questions int8" in checks["embedding_model"]["detail"]  # both of the bundled model's graphs probed


def test_readyz_is_503_when_the_chat_model_is_unreachable(api_settings: Any, db: Any, embedder: Any) -> None:
    from serving.api.app import create_app

    settings = api_settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"})
    server = LiveServer(create_app(settings, db=db, embedder=embedder))
    try:
        r = httpx.get(f"{server.url}/readyz")
    finally:
        server.close()
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert r.json()["checks"]["chat_model"]["ok"] is False and r.json()["checks"]["database"]["ok"]


def test_metrics_count_requests_by_route_template(client: httpx.Client, keys: Keys) -> None:
    client.post("/v1/ask", json={"question": "What is a data product?"}, headers=bearer(keys.sales))
    client.get("/v1/no/such/path")
    text = client.get("/metrics").text
    assert 'meshpilot_http_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert 'route="unmatched"' in text and "/v1/no/such/path" not in text
    assert "meshpilot_http_request_duration_seconds_bucket" in text
    assert 'meshpilot_answers_total{grounded="' in text


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/ask",
        "/v1/knowledge-products",
        "/v1/ingest",
        "/v1/chat/completions",
        "/v1/models",
        "/webhooks/github",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert client.get("/docs").status_code == 200


def test_web_page_is_served_with_a_strict_policy(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<title>meshpilot</title>" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "https://" not in r.text  # no CDN: the page works offline
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200


def test_keys_and_secrets_never_reach_the_logs(
    api_settings: Any, db: Any, embedder: Any, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    from serving.api.app import create_app

    server = LiveServer(create_app(api_settings, db=db, embedder=embedder), log_level="debug")  # access log on
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error", "serving", "")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        with httpx.Client(base_url=server.url) as http:
            http.post("/v1/ask", json={"question": "What is a data product?"}, headers=bearer(keys.sales))
            http.post("/v1/ask", json={"question": 1}, headers=bearer(keys.sales))
            http.post("/v1/ask", json={"question": "x"}, headers=bearer(keys.sales + "tampered"))
            http.post(
                "/webhooks/github",
                content=b"{}",
                headers={"X-Hub-Signature-256": "sha256=00", "X-GitHub-Event": "ping"},
            )
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)
        server.close()
    # The server side's records only: this test's own HTTP client logs its request headers at DEBUG.
    server_side = ("uvicorn", "serving", "rag", "fastapi", "starlette", "sqlalchemy")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server_side))
    assert "POST /v1/ask" in logged  # the access log was on
    assert keys.sales[3:] not in logged and "test-webhook-secret" not in logged
