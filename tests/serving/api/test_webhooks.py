"""/webhooks/github: HMAC verification, event parsing, storage, and the PR bot on a real git clone."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.copilot.helpers import case_data, draft_offline
from tests.copilot.test_proposals import git
from tests.serving.api.conftest import PR_REPOSITORY, WEBHOOK_SECRET


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


def test_a_pull_request_of_an_unconfigured_repository_is_stored_untouched(client: httpx.Client, db: Any) -> None:
    body = json.dumps(PR).encode()
    headers = signed(body, "pull_request")
    r = client.post("/webhooks/github", content=body, headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "repository_not_configured" and result["comment"] is None
    assert "MESHPILOT_GITHUB_REPOSITORIES" in result["message"]
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
    assert (row.event, row.status, bytes(row.payload)) == ("pull_request", "repository_not_configured", body)
    assert row.response["status"] == "repository_not_configured"

    again = client.post("/webhooks/github", content=body, headers=headers)  # GitHub redelivers
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["status"] == "repository_not_configured"


def commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    """Write (or, with None, delete) files in the clone, commit them, return the new sha."""
    for rel, content in files.items():
        path = repo / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def pull_request(base: str, head: str, number: int = 12, action: str = "synchronize") -> bytes:
    pr = {"number": number, "base": {"ref": "main", "sha": base}, "head": {"ref": "change", "sha": head}}
    return json.dumps(
        {"action": action, "number": number, "pull_request": pr, "repository": {"full_name": PR_REPOSITORY}}
    ).encode()


def deliver(client: httpx.Client, body: bytes) -> tuple[dict[str, Any], str]:
    headers = signed(body, "pull_request")
    r = client.post("/webhooks/github", content=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json(), headers["X-GitHub-Delivery"]


def stored(db: Any, delivery: str) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(
            text("SELECT status, comment, response FROM webhook_deliveries WHERE delivery_id = :d"), {"d": delivery}
        ).one()


def test_a_new_data_file_gets_a_proposed_contract_returned_and_stored(
    client: httpx.Client, db: Any, pr_clone: Path
) -> None:
    folder = f"products/{uuid.uuid4().hex[:8]}"
    base = commit(pr_clone, {"README.md": f"# data products {folder}\n"}, "readme")
    head = commit(pr_clone, {f"{folder}/data.csv": case_data("shipments").read_text()}, "add shipments")
    body = pull_request(base, head, action="opened")
    result, delivery = deliver(client, body)
    assert (result["status"], result["blocking"], result["pull_request"]) == ("comment_ready", False, 12)
    comment = result["comment"]
    assert comment.startswith(f"## meshpilot: data contracts ({base}...{head})")
    assert f"| `{folder}/data.csv` | data |" in comment and "no contract yet" in comment
    assert f"Proposed contract for <code>{folder}/data.csv</code>" in comment and "apiVersion: v3.1.0" in comment
    assert "returned and stored" in result["message"]

    row = stored(db, delivery)
    assert (row.status, row.comment) == ("comment_ready", comment)
    assert row.response["comment"] == comment and row.response["blocking"] is False
    again = client.post("/webhooks/github", content=body, headers=signed(body, "pull_request", delivery))
    assert again.json() == {**result, "duplicate": True}  # a redelivery does not run the bot again


def test_a_removed_column_blocks_until_the_major_version_is_bumped(
    client: httpx.Client, db: Any, pr_clone: Path, tmp_path: Path
) -> None:
    folder = f"products/{uuid.uuid4().hex[:8]}"
    data = case_data("shipments", tmp_path)
    contract = draft_offline(data, "shipments", "warehouse_ops", tmp_path / "out")["datacontract.odcs.yaml"]
    base = commit(pr_clone, {f"{folder}/data.csv": data.read_text(), f"{folder}/datacontract.odcs.yaml": contract}, "b")
    narrower = "\n".join(line.rsplit(";", 1)[0] for line in data.read_text().splitlines()) + "\n"
    head = commit(pr_clone, {f"{folder}/data.csv": narrower}, "drop currency")
    result, delivery = deliver(client, pull_request(base, head))
    assert result["status"] == "comment_ready" and result["blocking"] is True
    assert "**Breaking change without a major version bump.**" in result["comment"]
    assert "currency removed" in result["comment"] and "a breaking change" in result["message"]
    assert stored(db, delivery).comment == result["comment"]


def test_pull_requests_without_data_changes_or_commits_get_a_clear_status(
    client: httpx.Client, db: Any, pr_clone: Path
) -> None:
    base = commit(pr_clone, {}, "empty")
    head = commit(pr_clone, {"docs/notes.md": f"{uuid.uuid4()}\n"}, "docs only")
    result, delivery = deliver(client, pull_request(base, head))
    assert (result["status"], result["comment"], result["blocking"]) == ("no_data_changes", None, None)
    assert stored(db, delivery).status == "no_data_changes"

    unknown = hashlib.sha1(uuid.uuid4().bytes).hexdigest()  # noqa: S324 (a made-up commit id)
    result, _ = deliver(client, pull_request(base, unknown))
    assert result["status"] == "commits_not_found" and unknown[:12] in result["message"]
    assert "never fetches" in result["message"]
    result, _ = deliver(client, pull_request(base, "HEAD~1"))  # not a sha: never passed to git
    assert result["status"] == "commits_not_found"


def test_a_data_file_the_bot_cannot_read_is_a_stored_failure_not_a_5xx(
    client: httpx.Client, db: Any, pr_clone: Path
) -> None:
    folder = f"products/{uuid.uuid4().hex[:8]}"
    base = commit(pr_clone, {}, "empty")
    head = commit(pr_clone, {f"{folder}/data.csv": "id,name\n1,a\n2,b,extra\n3,c\n"}, "ragged")
    result, delivery = deliver(client, pull_request(base, head))
    assert result["status"] == "proposal_failed" and "ragged rows" in result["message"]
    assert stored(db, delivery).status == "proposal_failed"


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
