"""GitHub webhook deliveries (`Delivery`): signature check, event parsing, storage.

Threat model: anyone can POST to the webhook URL. Only a body whose `X-Hub-Signature-256` is the
HMAC-SHA256 of the exact bytes under the shared secret is believed; the comparison is constant-time,
and nothing of an unverified body is parsed or stored. A delivery id seen before returns the stored
response (GitHub redelivers on timeouts), so a delivery is processed once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from serving.api.audit import record_event

PR_BOT_UNAVAILABLE = (
    "the PR bot is not available in this version of meshpilot (it comes with the copilot); "
    "the delivery is stored and no comment was posted"
)


DeliveryStatus = Literal["pong", "pr_bot_unavailable", "ignored"]


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
        number = pr.get("number") if isinstance(pr, dict) else None
        return cls(
            id=delivery_id,
            event=event,
            action=_short(payload.get("action")),
            repository=_short(repo.get("full_name")) if isinstance(repo, dict) else None,
            pull_number=number if isinstance(number, int) and 0 < number < 2**31 else None,
        )


def _short(value: Any) -> str | None:
    """A payload string as PostgreSQL text can hold it (no NUL), bounded; None when not a string."""
    return value.replace("\x00", "")[:256] if isinstance(value, str) else None


def outcome(delivery: Delivery) -> tuple[DeliveryStatus, str]:
    """(status, message) for a delivery."""
    if delivery.event == "ping":
        return "pong", "webhook configured; meshpilot received the ping"
    if delivery.event == "pull_request" and delivery.action in (
        "opened",
        "synchronize",
        "reopened",
        "ready_for_review",
    ):
        return "pr_bot_unavailable", PR_BOT_UNAVAILABLE
    return "ignored", f"meshpilot does not act on {delivery.event!r} events" + (
        f" with action {delivery.action!r}" if delivery.action else ""
    )


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
