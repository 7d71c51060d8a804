"""A serving process freezes its start-up heap, so the collector's full passes skip it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving.api.startup_heap import freeze_startup_heap
from tests.serving.api.conftest import LiveServer


@pytest.fixture
def thawed() -> Iterator[None]:
    """This test process's heap is thawed afterwards: frozen, its later cyclic garbage would stay."""
    assert gc.get_freeze_count() == 0
    try:
        yield
    finally:
        gc.unfreeze()


class _Obj:
    pass


def test_frozen_objects_leave_the_full_collections(thawed: None) -> None:
    loaded = [_Obj() for _ in range(1000)]  # what start-up keeps for the process's life
    assert all(gc.is_tracked(o) for o in loaded)
    frozen = freeze_startup_heap()
    assert frozen >= len(loaded) and gc.get_freeze_count() >= len(loaded)
    walked = {id(o) for o in gc.get_objects()}  # generations 0-2: what a full collection walks
    assert not any(id(o) in walked for o in loaded)
    after = [_Obj() for _ in range(10)]  # a request's objects are collected as usual
    walked = {id(o) for o in gc.get_objects()}
    assert all(id(o) in walked for o in after)


def test_the_served_app_freezes_its_heap_once_started_and_then_answers(
    thawed: None, api_settings: Any, db: Any, embedder: Any, samples: Any
) -> None:
    from serving.api.app import create_app

    server = LiveServer(create_app(api_settings, db=db, embedder=embedder, freeze_heap=True))
    try:
        assert gc.get_freeze_count() > 10_000  # modules, models, the app: everything start-up built
        assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
    finally:
        server.close()


def test_an_app_built_without_it_leaves_the_heap_alone(
    thawed: None, api_settings: Any, db: Any, embedder: Any, samples: Any
) -> None:
    from serving.api.app import create_app

    server = LiveServer(create_app(api_settings, db=db, embedder=embedder))
    try:
        assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
        assert gc.get_freeze_count() == 0
    finally:
        server.close()
