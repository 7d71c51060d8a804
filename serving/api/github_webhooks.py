"""GitHub webhook deliveries (`Delivery`, `Outcome`): signature check, event parsing, the PR bot, storage.

Threat model: anyone can POST to the webhook URL. Only a body whose `X-Hub-Signature-256` is the
HMAC-SHA256 of the exact bytes under the shared secret is believed; the comparison is constant-time,
and nothing of an unverified body is parsed or stored. A delivery id seen before returns the stored
response (GitHub redelivers on timeouts), so a delivery is processed once. The payload names
commits by sha only; the PR bot reads them from a local clone the server configures for the
repository (MESHPILOT_GITHUB_REPOSITORIES) and never fetches, so a payload cannot point it elsewhere.

The PR bot's comment is returned and stored, not posted: posting needs the network and a GitHub
token, which is the job of a CI step or a GitHub App that reads the response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from copilot.proposals import propose_changes
from rag.errors import MeshpilotError
from serving.api.audit import record_event

log = logging.getLogger(__name__)
PR_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

DeliveryStatus = Literal[
    "pong",
    "ignored",
    "comment_ready",
    "no_data_changes",
    "repository_not_configured",
    "commits_not_found",
    "proposal_failed",
    "pr_bot_unavailable",  # sent by versions without the PR bot; stored deliveries may hold it
]


class SignatureError(Exception):
    pass


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    scheme, _, digest = header.partition("=")
    if scheme != "sha256" or not digest:
        raise SignatureError("X-Hub-Signature-256 must be sha256=<hex digest>")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest.strip().lower()):
        raise SignatureError("the signature does not match the body")


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    repository: str | None
    pull_number: int | None
    base_sha: str | None = None
    head_sha: str | None = None

    @classmethod
    def parse(cls, delivery_id: str, event: str, body: bytes) -> Delivery:
        """Parse a verified body; ValueError when it is not a JSON object."""
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        repo = payload.get("repository")
        pr = payload.get("pull_request")
        pr = pr if isinstance(pr, dict) else {}
        number = pr.get("number")
        return cls(
            id=delivery_id,
            event=event,
            action=_short(payload.get("action")),
            repository=_short(repo.get("full_name")) if isinstance(repo, dict) else None,
            pull_number=number if isinstance(number, int) and 0 < number < 2**31 else None,
            base_sha=_sha(pr.get("base")),
            head_sha=_sha(pr.get("head")),
        )


def _short(value: Any) -> str | None:
    """A payload string as PostgreSQL text can hold it (no NUL), bounded; None when not a string."""
    return value.replace("\x00", "")[:256] if isinstance(value, str) else None


def _sha(ref: Any) -> str | None:
    sha = ref.get("sha") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) and _SHA.match(sha) else None


@dataclass(frozen=True)
class Outcome:
    """What was done with a delivery; `comment` and `blocking` when the PR bot proposed something."""

    status: DeliveryStatus
    message: str
    comment: str | None = None
    blocking: bool | None = None


def outcome(delivery: Delivery, repositories: Mapping[str, Path]) -> Outcome:
    if delivery.event == "ping":
        return Outcome("pong", "webhook configured; meshpilot received the ping")
    if delivery.event == "pull_request" and delivery.action in PR_ACTIONS:
        return pr_bot(delivery, repositories)
    return Outcome(
        "ignored",
        f"meshpilot does not act on {delivery.event!r} events"
        + (f" with action {delivery.action!r}" if delivery.action else ""),
    )


def pr_bot(delivery: Delivery, repositories: Mapping[str, Path]) -> Outcome:
    """Propose contracts for the data files, DDL and contracts the pull request changes (copilot.proposals)."""
    repo = delivery.repository or ""
    clone = repositories.get(repo)
    if clone is None or not clone.expanduser().is_dir():
        why = "is not in MESHPILOT_GITHUB_REPOSITORIES" if clone is None else "has no local clone where configured"
        return Outcome("repository_not_configured", f"repository {repo!r} {why}; nothing was proposed")
    base, head = delivery.base_sha, delivery.head_sha
    if base is None or head is None:
        return Outcome("commits_not_found", "the payload has no pull_request.base.sha and pull_request.head.sha")
    missing = [sha[:12] for sha in (base, head) if not _has_commit(clone.expanduser(), sha)]
    if missing:
        return Outcome(
            "commits_not_found",
            f"commit {' and '.join(missing)} is not in the local clone of {repo}; meshpilot never fetches:"
            " fetch into the clone (a CI step or cron), and the next push to the pull request is proposed",
        )
    try:
        proposal = propose_changes(clone.expanduser(), base, head)
    except MeshpilotError as exc:  # a file the PR changed cannot be read as data, say
        return Outcome("proposal_failed", f"the PR bot could not propose: {exc}")
    except Exception:  # stored all the same: the delivery is not lost, and can be processed again
        log.exception("the PR bot failed on %s#%s", repo, delivery.pull_number)
        return Outcome("proposal_failed", "the PR bot failed; the server log has the details")
    if not proposal.files:
        return Outcome("no_data_changes", "no data files, DDL or contracts changed; no comment")
    verdict = "a breaking change without a major version bump" if proposal.blocking else "nothing blocking"
    return Outcome(
        "comment_ready",
        f"proposed contracts for {len(proposal.files)} changed file(s), {verdict}; the comment is returned and"
        " stored here, for a CI step or a GitHub App to post",
        proposal.comment,
        proposal.blocking,
    )


def _has_commit(clone: Path, sha: str) -> bool:
    done = subprocess.run(
        ["git", "-C", str(clone), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True, check=False
    )
    return done.returncode == 0


def stored_response(conn: Connection, delivery_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        text("SELECT response FROM webhook_deliveries WHERE delivery_id = :d"), {"d": delivery_id}
    ).first()
    return dict(row.response) if row else None


def store(
    conn: Connection, delivery: Delivery, status: str, comment: str | None, response: dict[str, Any], body: bytes
) -> bool:
    """Store the delivery with the response sent; False when its id was stored already (a redelivery)."""
    inserted = conn.execute(
        text(
            "INSERT INTO webhook_deliveries (delivery_id, event, action, repository, pull_number, status, comment,"
            " response, payload) VALUES (:id, :event, :action, :repo, :pr, :status, :comment, CAST(:resp AS jsonb),"
            " :payload) ON CONFLICT (delivery_id) DO NOTHING"
        ),
        {
            "id": delivery.id,
            "event": delivery.event,
            "action": delivery.action,
            "repo": delivery.repository,
            "pr": delivery.pull_number,
            "status": status,
            "comment": comment,
            "resp": json.dumps(response),
            "payload": body,
        },
    ).rowcount
    if inserted:
        record_event(
            conn,
            actor="github",
            action=f"webhook.{delivery.event}",
            target=delivery.repository,
            details={"delivery": delivery.id, "status": status, "pull_request": delivery.pull_number},
        )
    return bool(inserted)
