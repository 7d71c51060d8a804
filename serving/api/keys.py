"""API keys (`ApiKey`, `Principal`): created once, shown once, stored as a SHA-256 only.

A key is `mp_` + 43 URL-safe characters (256 random bits). Its groups drive the RAG service's
permission filter; `admin` allows creating products and ingesting. Revoked keys stay listed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from rag.errors import NotFound, UsageError
from rag.products import parse_groups
from serving.api.audit import record_event

KEY_PREFIX = "mp_"
# Enough of the key to recognise it in a listing, far too little to guess the rest.
SHOWN_CHARS = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_KEY_SHAPE = re.compile(r"^mp_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, its groups, and whether it is an admin key."""

    key_id: int
    name: str
    groups: list[str]
    admin: bool


@dataclass(frozen=True)
class CreatedKey:
    key: str
    name: str
    groups: list[str]
    admin: bool

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "groups": self.groups, "admin": self.admin}


@dataclass(frozen=True)
class ApiKey:
    """A stored key as listings show it: never the key itself."""

    id: int
    name: str
    prefix: str
    groups: list[str]
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "groups": self.groups,
            "admin": self.admin,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"invalid key name {name!r}: letters, digits and . _ @ - only, at most 128 characters")
    return name


def create_key(
    conn: Connection, name: str, groups: str | list[str] | None, *, admin: bool = False, actor: str = "cli"
) -> CreatedKey:
    """Store a new key's hash and return the key: the only moment it exists in clear."""
    validate_name(name)
    group_list = parse_groups(groups)
    taken = conn.execute(text("SELECT 1 FROM api_keys WHERE name = :n AND revoked_at IS NULL"), {"n": name}).first()
    if taken:
        raise UsageError(f"an active key named {name!r} exists; revoke it first or pick another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        text(
            "INSERT INTO api_keys (name, prefix, key_hash, groups, is_admin)"
            " VALUES (:name, :prefix, :hash, :groups, :admin)"
        ),
        {
            "name": name,
            "prefix": key[: len(KEY_PREFIX) + SHOWN_CHARS],
            "hash": hash_key(key),
            "groups": group_list,
            "admin": admin,
        },
    )
    record_event(conn, actor=actor, action="key.create", target=name, details={"groups": group_list, "admin": admin})
    return CreatedKey(key=key, name=name, groups=group_list, admin=admin)


def list_keys(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(
        text(
            "SELECT k.id, k.name, k.prefix, k.groups, k.is_admin, k.created_at, k.revoked_at,"
            " to_timestamp(w.window_start * 60) AS last_used_at"
            " FROM api_keys k LEFT JOIN api_rate_windows w ON w.key_id = k.id ORDER BY k.id"
        )
    )
    return [
        ApiKey(r.id, r.name, r.prefix, list(r.groups), r.is_admin, r.created_at, r.revoked_at, r.last_used_at)
        for r in rows
    ]


def revoke_key(conn: Connection, name: str, *, actor: str = "cli") -> int:
    """Revoke the active key named `name`, or the key whose listed prefix is `name`; returns its id."""
    row = conn.execute(
        text(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE revoked_at IS NULL AND (name = :n OR prefix = :n) RETURNING id, name"
        ),
        {"n": name},
    ).first()
    if row is None:
        raise NotFound(f"no active key named {name!r}; `meshpilot keys list` shows them")
    record_event(conn, actor=actor, action="key.revoke", target=row.name)
    return int(row.id)


def authenticate(conn: Connection, key: str) -> Principal | None:
    """The active key's principal, or None. Malformed keys are rejected before any query."""
    if not _KEY_SHAPE.match(key):
        return None
    row = conn.execute(
        text("SELECT id, name, groups, is_admin FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
        {"h": hash_key(key)},
    ).first()
    if row is None:
        return None
    return Principal(key_id=int(row.id), name=row.name, groups=list(row.groups), admin=bool(row.is_admin))
