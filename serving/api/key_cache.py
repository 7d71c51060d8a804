"""Keys checked once, then remembered (`KeyCache`) while PostgreSQL can tell this process of changes.

Every `/v1` request used to look its key up: a hop to the threadpool and a statement, about a third
of the API process's CPU per question on the serving benchmark. A trigger (migration 7) notifies
`meshpilot_api_keys` on every update or delete of a key (a revocation, new groups, by the CLI or
by hand), and each API process listens on a connection of its own: a notification forgets every
remembered key. Only while that connection is up are keys remembered at all, so a process that
cannot listen (the database restarting; a pooler in transaction mode, which drops notifications
silently, is covered by `TTL_S` only) looks every key up as before. A remembered key is looked up
again after `TTL_S` whatever happens, and a lookup that a notification overtook is not remembered.

Invalid keys are never remembered: they cost a lookup each, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from serving.api.keys import Principal, hash_key

log = logging.getLogger(__name__)

CHANNEL = "meshpilot_api_keys"
TTL_S = 5.0
"""The most a change can take to be seen where a notification was lost (a silently dead connection)."""
RETRY_S = 2.0
_KEPT = 10_000


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float]] = {}
        self.generation = 0
        """Bumped by every notification (and every loss of the listening connection)."""
        self.listening = False
        self.hits = 0

    def get(self, key: str) -> Principal | None:
        if not self.listening:
            return None
        entry = self._entries.get(hash_key(key))
        if entry is None or entry[1] <= time.monotonic():
            return None
        self.hits += 1
        return entry[0]

    def put(self, key: str, principal: Principal, generation: int) -> None:
        """Remember `principal`, looked up when `generation` was current: not if a change came since."""
        if not self.listening or generation != self.generation:
            return
        if len(self._entries) >= _KEPT:
            self._entries.clear()
        self._entries[hash_key(key)] = (principal, time.monotonic() + TTL_S)

    def forget(self) -> None:
        self._entries.clear()
        self.generation += 1

    async def listen(self, connect_args: tuple[Any, dict[str, Any]]) -> None:
        """Listen until cancelled, connecting again after a failure; `connect_args` as psycopg's connect."""
        import psycopg

        args, kwargs = connect_args
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(*args, **{**kwargs, "autocommit": True})
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.forget()  # whatever changed while nobody listened
                    self.listening = True
                    async for _ in conn.notifies():
                        self.forget()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting, typically: look keys up meanwhile
                log.warning("not listening for key changes (%s); retrying in %.0f s", type(exc).__name__, RETRY_S)
            finally:
                self.listening = False
                self.forget()
            await asyncio.sleep(RETRY_S)

    @staticmethod
    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
