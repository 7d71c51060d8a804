"""/webhooks/github: HMAC verification, event parsing, storage; the PR bot is not available yet."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.serving.api.conftest import WEBHOOK_SECRET


def signed(body: bytes, event: str, delivery: str | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }


PR = {
    "action": "opened",
    "number": 7,
    "pull_request": {"number": 7, "title": "Add invoices contract"},
    "repository": {"full_name": "lakeshore/finance-products"},
}


def test_pull_request_is_stored_and_says_the_bot_is_unavailable(client: httpx.Client, db: Any) -> None:
    body = json.dumps(PR).encode()
    headers = signed(body, "pull_request")
    r = client.post("/webhooks/github", content=body, headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "pr_bot_unavailable" and result["comment"] is None
    assert "not available" in result["message"]
    assert (result["repository"], result["pull_request"], result["duplicate"]) == (
        "lakeshore/finance-products",
        7,
        False,
    )
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT event, status, payload, response FROM webhook_deliveries WHERE delivery_id = :d"),
            {"d": headers["X-GitHub-Delivery"]},
        ).one()
    assert (row.event, row.status, bytes(row.payload)) == ("pull_request", "pr_bot_unavailable", body)
    assert row.response["status"] == "pr_bot_unavailable"

    again = client.post("/webhooks/github", content=body, headers=headers)  # GitHub redelivers
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["status"] == "pr_bot_unavailable"


def test_ping_and_other_events(client: httpx.Client) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    assert client.post("/webhooks/github", content=body, headers=signed(body, "ping")).json()["status"] == "pong"
    push = b'{"ref": "refs/heads/main"}'
    assert client.post("/webhooks/github", content=push, headers=signed(push, "push")).json()["status"] == "ignored"


def test_bad_signatures_are_401_and_not_stored(client: httpx.Client, db: Any) -> None:
    body = json.dumps(PR).encode()
    cases = [
        signed(body, "pull_request", secret="wrong-secret"),
        {**signed(body, "pull_request"), "X-Hub-Signature-256": "sha1=abc"},
        {k: v for k, v in signed(body, "pull_request").items() if k != "X-Hub-Signature-256"},
    ]
    for headers in cases:
        r = client.post("/webhooks/github", content=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
        with db.engine.connect() as conn:
            stored = conn.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = :d"),
                {"d": headers["X-GitHub-Delivery"]},
            ).scalar_one()
        assert stored == 0
    tampered = signed(body, "pull_request")
    r = client.post("/webhooks/github", content=body.replace(b"opened", b"closed"), headers=tampered)
    assert r.status_code == 401


def test_signed_but_malformed_body_is_400(client: httpx.Client) -> None:
    for body in (b"{not json", b"[1, 2]"):
        r = client.post("/webhooks/github", content=body, headers=signed(body, "pull_request"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    ),
    event=st.sampled_from(["pull_request", "ping", "push", "issues"]),
    delivery=st.text(max_size=40),
)
def test_any_signed_payload_gets_a_clear_answer_never_a_5xx(
    client: httpx.Client, payload: Any, event: str, delivery: str
) -> None:
    body = json.dumps(payload).encode()
    headers = signed(body, event)
    if delivery.isascii() and delivery.isprintable():
        headers["X-GitHub-Delivery"] = delivery
    r = client.post("/webhooks/github", content=body, headers=headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] == "malformed_json"
