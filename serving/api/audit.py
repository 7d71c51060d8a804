"""The audit trail (`audit_events`): who created keys and products, ingested, or sent webhooks."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection


def record_event(
    conn: Connection, *, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None
) -> None:
    """Append an event in the caller's transaction, so the event and the change commit together.

    `details` must never hold secrets: keys, webhook secrets and request bodies stay out of it.
    """
    conn.execute(
        text("INSERT INTO audit_events (actor, action, target, details) VALUES (:a, :ac, :t, CAST(:d AS jsonb))"),
        {"a": actor, "ac": action, "t": target, "d": json.dumps(details or {})},
    )
