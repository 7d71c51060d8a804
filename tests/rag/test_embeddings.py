from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from rag.embeddings import CoalescingEncoder, Vectors


def _held_first_call() -> tuple[CoalescingEncoder, list[list[str]], threading.Event, threading.Event]:
    """An encoder whose first model call blocks until released, so that later callers queue."""
    calls: list[list[str]] = []
    started, release = threading.Event(), threading.Event()

    def encode(texts: list[str]) -> Vectors:
        calls.append(texts)
        if len(calls) == 1:
            started.set()
            release.wait(10)
        if "boom" in texts:
            raise RuntimeError("model failed")
        return np.array([[float(t)] for t in texts], dtype=np.float32)

    return CoalescingEncoder(encode, max_texts=4), calls, started, release


def _queue_behind_the_first(encoder: CoalescingEncoder, started: threading.Event, n: int) -> None:
    assert started.wait(10)
    deadline = time.monotonic() + 10
    while len(encoder._queue) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(encoder._queue) == n


def test_queued_callers_share_model_calls_and_each_gets_its_own_vectors() -> None:
    encoder, calls, started, release = _held_first_call()
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(encoder, ["0"])
        _queue_behind_the_first(encoder, started, 0)
        rest = {i: pool.submit(encoder, [str(i)]) for i in range(1, 7)}
        _queue_behind_the_first(encoder, started, 6)
        release.set()
        assert first.result().tolist() == [[0.0]]
        assert all(f.result().tolist() == [[float(i)]] for i, f in rest.items())
    assert calls[0] == ["0"] and [len(c) for c in calls[1:]] == [4, 2]  # at most max_texts per call
    assert sorted(int(t) for c in calls[1:] for t in c) == [1, 2, 3, 4, 5, 6]
    assert (encoder.runs, encoder.jobs) == (3, 7)


def test_a_failed_model_call_fails_every_caller_in_it_and_only_those() -> None:
    encoder, _calls, started, release = _held_first_call()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(encoder, ["0"])
        _queue_behind_the_first(encoder, started, 0)
        bad = [pool.submit(encoder, ["boom"]), pool.submit(encoder, ["2"])]
        _queue_behind_the_first(encoder, started, 2)
        release.set()
        assert first.result().tolist() == [[0.0]]
        for future in bad:
            with pytest.raises(RuntimeError, match="model failed"):
                future.result()
    assert encoder(["5"]).tolist() == [[5.0]]  # the encoder is free again


def test_concurrent_minilm_queries_get_the_vectors_they_get_alone(embedder: Any) -> None:
    questions = [f"How long are {w} kept before deletion?" for w in ("logs", "raw events", "invoices", "tickets")]
    alone = np.stack([embedder.embed([q])[0] for q in questions])
    with ThreadPoolExecutor(len(questions)) as pool:
        together = np.stack(list(pool.map(lambda q: embedder.embed([q])[0], questions)))
    assert np.allclose(alone, together, atol=1e-5)
