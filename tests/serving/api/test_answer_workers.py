"""Answer worker processes: the same answers as the service in this process, errors raised as theirs,
cancelled questions never answer the next one, and a killed worker fails only what it held."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rag.errors import NotFound, UsageError
from serving.api.answer_workers import AnswerWorkerLost, AnswerWorkers
from tests.openai_server import OpenAITestServer

QUESTION = "How fast does on-call have to acknowledge a SEV1?"
OTHER = "Who owns the orders data product?"


@pytest.fixture(scope="module")
def workers(settings: Any, db: Any, samples: Any) -> Iterator[AnswerWorkers]:
    pool = AnswerWorkers(settings, db.engine.url.render_as_string(hide_password=False), processes=2, threads=2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One loop for the module: the workers' pipes are read on the loop that first asked.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def ask(workers: AnswerWorkers, question: str, **kw: Any) -> Any:
    return workers.ask(question, groups=kw.get("groups", ["sre"]), product=kw.get("product"), domain=None)


def test_workers_answer_as_the_service_does(
    workers: AnswerWorkers, loop: asyncio.AbstractEventLoop, db: Any, settings: Any, embedder: Any
) -> None:
    from rag.service import RagService

    here = RagService.build(settings, db, embedder=embedder)

    async def both() -> list[Any]:
        return await asyncio.gather(ask(workers, QUESTION), ask(workers, OTHER, groups=["sales"]))

    asked = [(QUESTION, ["sre"]), (OTHER, ["sales"])]
    for got, (question, groups) in zip(loop.run_until_complete(both()), asked, strict=True):
        expected = here.ask(question, groups=groups)
        assert got.answer == expected.answer and got.grounded == expected.grounded
        assert [(c.chunk_id, c.quote) for c in got.citations] == [(c.chunk_id, c.quote) for c in expected.citations]
    assert "15 minutes" in loop.run_until_complete(ask(workers, QUESTION)).answer
    assert len(set(workers.pids())) == 2 and os.getpid() not in workers.pids()


def test_each_worker_froze_its_start_up_heap_before_saying_ready(workers: AnswerWorkers) -> None:
    # The models, guards and modules of a worker: out of the collector's full passes (startup_heap).
    assert all(w.frozen > 10_000 for w in workers.workers)


def test_errors_come_back_as_the_service_raised_them(workers: AnswerWorkers, loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(UsageError, match="empty"):
        loop.run_until_complete(ask(workers, "   "))
    with pytest.raises(NotFound, match="no-such-product"):
        loop.run_until_complete(ask(workers, QUESTION, product="no-such-product"))


def test_a_cancelled_question_never_answers_the_next(workers: AnswerWorkers, loop: asyncio.AbstractEventLoop) -> None:
    async def cancel_then_ask() -> Any:
        first = asyncio.ensure_future(ask(workers, QUESTION))
        await asyncio.sleep(0)  # sent
        first.cancel()
        return await asyncio.gather(*(ask(workers, OTHER, groups=["sales"]) for _ in range(4)))

    answers = loop.run_until_complete(cancel_then_ask())
    assert all("15 minutes" not in a.answer and a.answer == answers[0].answer for a in answers)
    assert all(not w.waiting for w in workers.workers)  # the late reply was read and dropped


@pytest.mark.slow
def test_a_killed_worker_fails_what_it_held_and_is_replaced(
    workers: AnswerWorkers, loop: asyncio.AbstractEventLoop
) -> None:
    async def kill_while_answering() -> tuple[Any, list[Any]]:
        held = asyncio.ensure_future(ask(workers, QUESTION))
        await asyncio.sleep(0)
        victim = next(w for w in workers.workers if w.waiting)
        assert victim.process.pid is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        lost = await asyncio.gather(held, return_exceptions=True)
        # Meanwhile the other worker answers everything.
        return lost[0], await asyncio.gather(*(ask(workers, QUESTION) for _ in range(3)))

    before = set(workers.pids())
    lost, answered = loop.run_until_complete(kill_while_answering())
    assert isinstance(lost, AnswerWorkerLost) and lost.status == 503
    assert all("15 minutes" in a.answer for a in answered)

    async def wait_for_replacement() -> None:
        deadline = time.monotonic() + 120
        while workers.alive < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    loop.run_until_complete(wait_for_replacement())
    assert workers.alive == 2 and workers.restarts == 1 and len(set(workers.pids()) - before) == 1
    assert "15 minutes" in loop.run_until_complete(ask(workers, QUESTION)).answer


def test_workers_answer_with_the_configured_llm(settings: Any, db: Any, samples: Any) -> None:
    """With an LLM endpoint set, each worker builds the LLM answerer and calls the endpoint itself."""
    server = OpenAITestServer()
    llm = settings.model_copy(update={"llm_base_url": server.base_url, "llm_model": "test-model", "llm_timeout_s": 10})
    pool = AnswerWorkers(llm, db.engine.url.render_as_string(hide_password=False), processes=1, threads=1)
    event_loop = asyncio.new_event_loop()
    try:
        server.replies.append("Batch data products must be refreshed at least every 24 hours [1].")
        question = "How often must batch products be refreshed?"
        result = event_loop.run_until_complete(pool.ask(question, groups=[], product=None, domain=None))
        assert result.grounded and result.answer.endswith("[1].")
        assert result.citations[0].source == "slo-defaults.md" and "24 hours" in result.citations[0].quote
        [request] = server.requests
        assert request["body"]["model"] == "test-model" and question in request["body"]["messages"][-1]["content"]
    finally:
        pool.close()
        event_loop.close()
        server.close()
