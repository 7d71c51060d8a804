"""Per-key rate limit (`RateDecision`), counted in PostgreSQL so every worker and replica shares it.

A sliding window approximated from two fixed one-minute windows (the previous minute's count
weighted by how much of it still overlaps the last 60 s, plus this minute's). One UPSERT per request
on an UNLOGGED table, timed by the database clock so replicas agree. Every request counts, refused
ones too: a client that keeps hammering stays refused until it slows down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

_HIT = text(
    """
    WITH now_ AS (SELECT extract(epoch FROM clock_timestamp()) / 60 AS minutes)
    INSERT INTO api_rate_windows AS w (key_id, window_start, hits, prev_hits)
    SELECT :key_id, floor(minutes)::bigint, 1, 0 FROM now_
    ON CONFLICT (key_id) DO UPDATE SET
        prev_hits = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.prev_hits
                         WHEN w.window_start = EXCLUDED.window_start - 1 THEN w.hits
                         ELSE 0 END,
        hits = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.hits + 1 ELSE 1 END,
        window_start = EXCLUDED.window_start
    RETURNING hits, prev_hits, (SELECT minutes - floor(minutes) FROM now_) AS elapsed
    """
)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute

    def hit(self, conn: Connection, key_id: int) -> RateDecision:
        row = conn.execute(_HIT, {"key_id": key_id}).one()
        hits, prev, elapsed = int(row.hits), int(row.prev_hits), float(row.elapsed)
        used = prev * (1 - elapsed) + hits
        if used <= self.per_minute:
            return RateDecision(True, self.per_minute, int(self.per_minute - used), 0)
        # When the weighted count falls back under the limit: the previous minute's share shrinks
        # linearly; this minute's hits only leave when the window turns.
        wait_minutes = (used - self.per_minute) / prev if prev and hits <= self.per_minute else 1 - elapsed
        return RateDecision(False, self.per_minute, 0, max(1, math.ceil(wait_minutes * 60)))
