"""Per-key rate limit (`RateDecision`), counted in PostgreSQL so every worker and replica shares it.

A sliding window approximated from two fixed one-minute windows (the previous minute's count
weighted by how much of it still overlaps the last 60 s, plus this minute's). One UPSERT on an
UNLOGGED table adds a process's hits, timed by the database clock so replicas agree. Every request
counts, refused ones too: a client that keeps hammering stays refused until it slows down.

Every hit is counted before it is served, so no process can see less than the others served. A key
far from its limit (at most half of it with the new count) has hits counted ahead: the UPSERT that
counts a request also counts as many more as this process served since its previous one, and the
process serves those without a statement for the next `SYNC_S` at most. Under 32 concurrent
requests of one key, a statement a request on its one row cost PostgreSQL 1.1 ms of CPU a request
against 0.2 ms for the key lookup alone (lock waits on the row, its chain of dead versions). Hits
counted ahead and not served within `SYNC_S` stay counted: far from the limit, a key can be
over-counted by what one process served in its last `SYNC_S`, never under-counted. Counted ahead
only when the count, ahead hits included, stays within the limit, so the limit stays exact.

An earlier version batched the other way, counting hits after serving them; a second process could
then serve up to the limit while the first still held hits it had not counted (8 of a limit of 6).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

_HIT = text(
    """
    WITH now_ AS (SELECT extract(epoch FROM clock_timestamp()) / 60 AS minutes)
    INSERT INTO api_rate_windows AS w (key_id, window_start, hits, prev_hits)
    SELECT :key_id, floor(minutes)::bigint, :n, 0 FROM now_
    ON CONFLICT (key_id) DO UPDATE SET
        prev_hits = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.prev_hits
                         WHEN w.window_start = EXCLUDED.window_start - 1 THEN w.hits
                         ELSE 0 END,
        hits = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.hits + :n ELSE :n END,
        window_start = EXCLUDED.window_start
    RETURNING hits, prev_hits, (SELECT minutes - floor(minutes) FROM now_) AS elapsed
    """
)

SYNC_S = 0.25
_KEYS_KEPT = 10_000


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


@dataclass
class _Count:
    ahead: int  # hits counted in PostgreSQL and not served yet
    served: int  # hits served since the last UPSERT, the one that made it included
    synced: float  # monotonic time of the last UPSERT; hits counted ahead expire SYNC_S after it
    used: float  # the weighted count it returned


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._counts: dict[int, _Count] = {}
        self.flushes = 0  # UPSERTs run, for tests and benchmarks

    def ahead(self, key_id: int) -> int:
        """Hits of `key_id` this process has counted and not served yet (for tests and benchmarks)."""
        with self._lock:
            count = self._counts.get(key_id)
            return 0 if count is None or time.monotonic() - count.synced >= SYNC_S else count.ahead

    def hit_counted(self, key_id: int) -> RateDecision | None:
        """The hit served from those counted ahead, without a statement; None: `hit` must count it."""
        now = time.monotonic()
        with self._lock:
            count = self._counts.get(key_id)
            if count is not None and count.ahead > 0 and now - count.synced < SYNC_S:
                count.ahead -= 1
                count.served += 1
                return RateDecision(True, self.per_minute, max(0, int(self.per_minute - count.used)), 0)
        return None

    def hit(self, conn: Connection, key_id: int) -> RateDecision:
        counted = self.hit_counted(key_id)
        if counted is not None:
            return counted
        now = time.monotonic()
        with self._lock:
            count = self._counts.get(key_id)
            # Count ahead what this process served since its last UPSERT, within half the limit as last seen.
            extra = 0 if count is None else max(0, min(count.served, int(self.per_minute / 2 - count.used) - 1))
        row = conn.execute(_HIT, {"key_id": key_id, "n": 1 + extra}).one()
        recent, prev, elapsed = int(row.hits), int(row.prev_hits), float(row.elapsed)
        used = prev * (1 - elapsed) + recent
        allowed = used <= self.per_minute
        with self._lock:
            if len(self._counts) >= _KEYS_KEPT:
                self._counts.clear()
            count = self._counts.setdefault(key_id, _Count(0, 0, now, used))
            # Hits counted ahead are served only if the count with them is within the limit. Those another
            # thread's UPSERT counted meanwhile are kept (they are counted): they expire with these.
            kept = count.ahead if now - count.synced < SYNC_S else 0
            count.ahead, count.served, count.synced, count.used = kept + (extra if allowed else 0), 1, now, used
            self.flushes += 1
        if allowed:
            return RateDecision(True, self.per_minute, int(self.per_minute - used), 0)
        # When the weighted count falls back under the limit: the previous minute's share shrinks
        # linearly; this minute's hits only leave when the window turns.
        wait_minutes = (used - self.per_minute) / prev if prev and recent <= self.per_minute else 1 - elapsed
        return RateDecision(False, self.per_minute, 0, max(1, math.ceil(wait_minutes * 60)))
