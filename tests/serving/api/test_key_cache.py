"""Checked keys are remembered while PostgreSQL notifies changes, and forgotten at every change."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import text

from serving.api.key_cache import TTL_S, KeyCache
from serving.api.keys import Principal, hash_key
from tests.serving.api.conftest import LiveServer, bearer, make_key


def state_of(live: LiveServer) -> Any:
    return live.server.config.app.state.api


def wait_listening(state: Any) -> None:
    deadline = time.monotonic() + 10
    while not state.keys.listening and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.keys.listening


def test_a_remembered_key_is_not_looked_up_again(live: LiveServer, client: httpx.Client, db: Any) -> None:
    state = state_of(live)
    wait_listening(state)
    key = make_key(db, "remembered", ["sales"])
    before = state.keys.hits
    for _ in range(5):
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    # The first request looked the key up; the rest found it (some may count their hit in PostgreSQL).
    assert state.keys.hits - before >= 1
    assert state.keys.get(key) is not None and state.keys.get(key).name.startswith("remembered")  # type: ignore[union-attr]


def test_a_key_changed_by_hand_is_looked_up_again(live: LiveServer, client: httpx.Client, db: Any) -> None:
    state = state_of(live)
    wait_listening(state)
    key = make_key(db, "regrouped", ["sales"])
    names = lambda: {p["name"] for p in client.get("/v1/knowledge-products", headers=bearer(key)).json()["products"]}  # noqa: E731
    sales_view = names()
    generation = state.keys.generation
    with db.transaction() as conn:  # no CLI: an operator's UPDATE is seen too (the trigger of migration 7)
        conn.execute(text("UPDATE api_keys SET groups = '{finance}' WHERE key_hash = :h"), {"h": hash_key(key)})
    deadline = time.monotonic() + TTL_S
    while state.keys.generation == generation and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.keys.generation > generation, "no notification reached the server"
    finance_view = names()
    assert finance_view != sales_view and state.keys.get(key).groups == ["finance"]  # type: ignore[union-attr]


def test_nothing_is_remembered_without_listening_or_across_a_change() -> None:
    cache = KeyCache()
    alice = Principal(key_id=1, name="alice", groups=["sales"], admin=False)
    cache.put("mp_alice", alice, cache.generation)
    assert cache.get("mp_alice") is None  # not listening: every key is looked up
    cache.listening = True
    looked_up_at = cache.generation
    cache.forget()  # a notification came while the lookup ran
    cache.put("mp_alice", alice, looked_up_at)
    assert cache.get("mp_alice") is None
    cache.put("mp_alice", alice, cache.generation)
    assert cache.get("mp_alice") == alice and cache.hits == 1
