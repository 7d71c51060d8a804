"""The per-key rate limit counts every hit in PostgreSQL before serving it: some ahead far from the limit,
one by one near it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

from serving.api.ratelimit import SYNC_S, RateLimiter
from tests.serving.api.conftest import make_key


def _key_id(db: Any, name: str) -> int:
    from serving.api.keys import authenticate

    key = make_key(db, name, [])
    with db.engine.connect() as conn:
        principal = authenticate(conn, key)
    assert principal is not None
    return principal.key_id


def _counted(db: Any, key_id: int) -> int:
    """Every hit of a fresh key: this minute's, plus the last minute's if the window turned meanwhile."""
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT hits, prev_hits FROM api_rate_windows WHERE key_id = :k"), {"k": key_id}).one()
    return int(row.hits) + int(row.prev_hits)


def test_far_from_the_limit_hits_are_counted_ahead_in_few_statements(db: Any) -> None:
    key_id = _key_id(db, "batched")
    limiter = RateLimiter(1_000_000)
    with db.autocommit() as conn:
        decisions = [limiter.hit(conn, key_id) for _ in range(200)]
        assert all(d.allowed for d in decisions)
        assert limiter.flushes <= 25  # not one a hit: each UPSERT counts ahead what the last one served
        assert _counted(db, key_id) == 200 + limiter.ahead(key_id)  # every served hit is counted already
        time.sleep(SYNC_S * 1.2)
        flushes = limiter.flushes
        limiter.hit(conn, key_id)  # hits counted ahead expire: this one is counted by a statement
        assert limiter.flushes == flushes + 1


def test_two_processes_sharing_a_small_limit_allow_exactly_the_limit(db: Any) -> None:
    key_id = _key_id(db, "shared-small")
    first, second = RateLimiter(6), RateLimiter(6)  # two workers or replicas
    with db.autocommit() as conn:
        allowed = [(first if i % 2 else second).hit(conn, key_id).allowed for i in range(9)]
    assert allowed.count(True) == 6 and allowed[-3:] == [False, False, False], allowed
    assert first.flushes + second.flushes >= 6  # near the limit every hit is counted at once


def test_a_process_cannot_serve_what_another_has_not_counted(db: Any) -> None:
    """One process serves 3 hits, then another 6. When hits were counted after serving them, the first
    still held 2 uncounted ones while the second served up to the limit: 8 allowed of a limit of 6."""
    key_id = _key_id(db, "shared-burst")
    first, second = RateLimiter(6), RateLimiter(6)
    with db.autocommit() as conn:
        allowed = [limiter.hit(conn, key_id).allowed for limiter in [first] * 3 + [second] * 6]
    assert allowed == [True] * 6 + [False] * 3, allowed


def test_a_failed_count_serves_nothing_and_loses_nothing(db: Any) -> None:
    key_id = _key_id(db, "flaky")
    limiter = RateLimiter(1_000_000)

    class Down:
        def execute(self, *_args: Any, **_kwargs: Any) -> Any:
            raise OSError("connection lost")

    with db.autocommit() as conn:
        for _ in range(6):
            limiter.hit(conn, key_id)
        time.sleep(SYNC_S * 1.2)
        with pytest.raises(OSError):
            limiter.hit(Down(), key_id)  # type: ignore[arg-type]  # its own request fails
        limiter.hit(conn, key_id)
        assert _counted(db, key_id) == 7 + limiter.ahead(key_id)
