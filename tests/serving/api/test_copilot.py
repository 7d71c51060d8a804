"""/v1/copilot/threads on the live server: draft from uploaded data, approval by admin keys only, owner
isolation, chat messages, and bad input answered with a clear 4xx (never a 5xx, nothing left behind)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.copilot.helpers import FIXTURES, OWNER
from tests.serving.api.conftest import Keys, LiveServer, bearer

SHIPMENTS = (FIXTURES / "shipments" / "data.csv").read_text()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def create_json(client: httpx.Client, key: str, name: str, **extra: Any) -> httpx.Response:
    body = {"name": name, "domain": "warehouse_ops", "owner": OWNER, "content": SHIPMENTS, **extra}
    return client.post("/v1/copilot/threads", json=body, headers=bearer(key))


def say(client: httpx.Client, key: str, thread: str, content: str) -> httpx.Response:
    return client.post(f"/v1/copilot/threads/{thread}/messages", json={"content": content}, headers=bearer(key))


def thread_folders(home: Path) -> set[str]:
    folder = home.resolve() / "copilot"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_a_json_upload_is_drafted_then_published_on_approval(
    client: httpx.Client, keys: Keys, publish_root: Path, home: Path, db: Any
) -> None:
    name = unique("shipments")
    r = create_json(client, keys.admin, name, filename="shipments.csv")
    assert r.status_code == 201, r.text
    thread = r.json()
    assert (thread["status"], thread["valid"], thread["artifacts"]) == ("awaiting_approval", True, [])
    assert (thread["name"], thread["domain"], thread["owner"], thread["source"]) == (
        name,
        "warehouse_ops",
        OWNER,
        "shipments.csv",
    )
    assert len(thread["checks"]) >= 5 and all(c["passed"] for c in thread["checks"])
    assert "approve" in thread["message"] and "meshpilot draft" not in thread["message"]
    contract = yaml.safe_load(thread["files"]["datacontract.odcs.yaml"])
    assert contract["apiVersion"] == "v3.1.0" and contract["domain"] == "warehouse_ops"
    columns = {p["name"] for p in contract["schema"][0]["properties"]}
    assert {"shipment_id", "weight_kg", "currency"} <= columns
    # The data is kept under $MESHPILOT_HOME/copilot/<thread>/; nothing is published before approval.
    assert (home.resolve() / "copilot" / thread["thread"] / "input" / "shipments.csv").read_text() == SHIPMENTS
    target = publish_root / "warehouse_ops" / name
    assert not target.exists()

    read = client.get(f"/v1/copilot/threads/{thread['thread']}", headers=bearer(keys.admin))
    assert read.status_code == 200 and read.json() == thread

    approved = client.post(f"/v1/copilot/threads/{thread['thread']}/approve", headers=bearer(keys.admin))
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert done["status"] == "published" and done["valid"] is True
    assert {"datacontract.odcs.yaml", "README.md", "validation.json"} <= set(done["artifacts"])
    assert (target / "datacontract.odcs.yaml").read_text() == thread["files"]["datacontract.odcs.yaml"]
    assert json.loads((target / "validation.json").read_text())["valid"] is True

    again = client.post(f"/v1/copilot/threads/{thread['thread']}/reject", headers=bearer(keys.admin))
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_awaiting_approval"
    with db.engine.connect() as conn:
        actions = conn.execute(
            text("SELECT action FROM audit_events WHERE target = :t ORDER BY id"), {"t": thread["thread"]}
        ).scalars()
        assert list(actions) == ["copilot.create", "copilot.approve"]


def test_a_multipart_upload_by_a_plain_key_can_be_rejected_but_not_approved(
    client: httpx.Client, keys: Keys, publish_root: Path
) -> None:
    name = unique("shipments")
    r = client.post(
        "/v1/copilot/threads",
        data={"name": name, "domain": "warehouse_ops", "owner": OWNER},
        files={"file": ("shipments.csv", SHIPMENTS.encode(), "text/csv")},
        headers=bearer(keys.sales),
    )
    assert r.status_code == 201, r.text
    thread = r.json()["thread"]
    assert r.json()["status"] == "awaiting_approval"

    forbidden = client.post(f"/v1/copilot/threads/{thread}/approve", headers=bearer(keys.sales))
    assert forbidden.status_code == 403 and "admin" in forbidden.json()["error"]["message"]
    assert say(client, keys.sales, thread, "Approve").status_code == 403

    status = say(client, keys.sales, thread, "status")
    assert status.status_code == 200 and status.json()["action"] == "status"
    assert status.json()["reply"].startswith(f"warehouse_ops/{name}: awaiting approval")

    rejected = say(client, keys.sales, thread, "reject")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["action"] == "reject" and rejected.json()["thread"]["status"] == "rejected"
    assert "nothing was written" in rejected.json()["reply"]
    assert not (publish_root / "warehouse_ops" / name).exists()
    late = client.post(f"/v1/copilot/threads/{thread}/approve", headers=bearer(keys.admin))
    assert late.status_code == 409


def test_a_question_in_a_thread_is_answered_from_the_keys_knowledge(client: httpx.Client, keys: Keys) -> None:
    thread = create_json(client, keys.sre, unique("shipments")).json()["thread"]
    r = say(client, keys.sre, thread, "How often must batch data products be refreshed?")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["action"] == "answer" and reply["answer"]["grounded"] is True
    assert "24 hours" in reply["answer"]["answer"] and "\n\nSources:\n[1] " in reply["reply"]
    assert reply["thread"]["status"] == "awaiting_approval"


def test_threads_belong_to_the_key_that_created_them(client: httpx.Client, keys: Keys) -> None:
    thread = create_json(client, keys.sales, unique("shipments")).json()["thread"]
    for path in ("", "/approve", "/reject", "/messages"):
        method = client.get if path == "" else client.post
        kwargs: dict[str, Any] = {"json": {"content": "status"}} if path == "/messages" else {}
        r = method(f"/v1/copilot/threads/{thread}{path}", headers=bearer(keys.finance), **kwargs)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
    # Admin keys review every thread.
    assert client.get(f"/v1/copilot/threads/{thread}", headers=bearer(keys.admin)).status_code == 200
    for wrong in ("nope", uuid.uuid4().hex, thread.upper(), "%00", "a" * 500):
        r = client.get(f"/v1/copilot/threads/{wrong}", headers=bearer(keys.sales))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", wrong
    assert client.get(f"/v1/copilot/threads/{thread}").status_code == 401


def test_bad_input_is_a_clear_4xx_and_leaves_nothing_behind(
    client: httpx.Client, keys: Keys, home: Path, api_settings: Any
) -> None:
    before = thread_folders(home)
    url, auth = "/v1/copilot/threads", bearer(keys.sales)
    good = {"name": "orders", "domain": "sales", "owner": OWNER, "content": SHIPMENTS}
    form = {"name": "orders", "domain": "sales", "owner": OWNER}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
        ({"json": {**good, "name": 5}}, 422, "validation_error"),
        ({"json": {**good, "name": "Orders-2"}}, 422, "validation_error"),
        ({"json": {**good, "owner": "  "}}, 422, "validation_error"),
        ({"json": {**good, "filename": "../etc/passwd.csv"}}, 422, "validation_error"),
        ({"json": {**good, "filename": "data.exe"}}, 422, "validation_error"),
        ({"json": {**good, "out": "/tmp/elsewhere"}}, 422, "validation_error"),
        ({"json": {**good, "content": "id,name\n1,a\n2,b,extra\n3,c\n"}}, 400, "bad_source"),
        ({"json": {**good, "content": "id,name\n"}}, 400, "bad_source"),
        ({"json": {**good, "content": "x\x00y"}}, 422, "validation_error"),
        ({"content": b"name=orders", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"data": form, "files": {"other": ("a", b"a")}}, 422, "validation_error"),
        ({"data": form, "files": {"file": ("run.exe", b"x")}}, 400, "bad_request"),
        ({"data": {**form, "out": "/tmp/x"}, "files": {"file": ("a.csv", SHIPMENTS)}}, 422, "validation_error"),
        ({"data": {"name": "orders", "domain": "sales"}, "files": {"file": ("a.csv", SHIPMENTS)}}, 422, ""),
        ({"json": {**good, "content": "a," * 600_000}}, 413, "payload_too_large"),
    ]
    for kwargs, status, code in cases:
        r = client.post(url, headers={**auth, **kwargs.pop("headers", {})}, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert set(r.json()["error"]) >= {"code", "message"}
        assert not code or r.json()["error"]["code"] == code, r.text
        assert str(api_settings.home.resolve()) not in r.text  # the server's folders stay private
    assert thread_folders(home) == before
    assert client.post(url, json=good).status_code == 401
    r = client.post(f"{url}/{uuid.uuid4().hex}/messages", json={"content": ""}, headers=auth)
    assert r.status_code == 422


@pytest.fixture(scope="module")
def awaiting(live: LiveServer, keys: Keys) -> str:
    """A thread of the sales key that awaits approval."""
    body = {"name": unique("shipments"), "domain": "warehouse_ops", "owner": OWNER, "content": SHIPMENTS}
    r = httpx.post(f"{live.url}/v1/copilot/threads", json=body, headers=bearer(keys.sales), timeout=120)
    assert r.status_code == 201, r.text
    return str(r.json()["thread"])


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.text(min_size=1, max_size=300) | st.sampled_from(["status", " /Status! ", "approve", "APPROVE."]))
def test_any_message_gets_a_clear_answer_never_a_5xx(
    client: httpx.Client, keys: Keys, awaiting: str, content: str
) -> None:
    r = say(client, keys.sales, awaiting, content)
    assert r.status_code in (200, 400, 403, 422), r.text
    if r.status_code == 200:
        assert r.json()["action"] in ("status", "answer") and r.json()["thread"]["status"] == "awaiting_approval"
    else:
        assert set(r.json()["error"]) >= {"code", "message"}


def test_two_decisions_at_once_decide_the_thread_once(client: httpx.Client, keys: Keys) -> None:
    from concurrent.futures import ThreadPoolExecutor

    thread = create_json(client, keys.admin, unique("shipments")).json()["thread"]
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda verb: client.post(f"/v1/copilot/threads/{thread}/{verb}", headers=bearer(keys.admin)),
                ["approve", "reject"],
            )
        )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    final = client.get(f"/v1/copilot/threads/{thread}", headers=bearer(keys.admin)).json()
    winner = next(r for r in answers if r.status_code == 200).json()
    assert final["status"] == winner["status"] and final["status"] in ("published", "rejected")
