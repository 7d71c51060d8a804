"""Questions answered in worker processes (`AnswerWorkers`), so that answering is not bound to one GIL.

In one process the event loop and the threads answering questions take turns on a single GIL; on the
serving benchmark (2 cores, 32 clients, docs/benchmarks.md) that process kept the cores 80-85 % busy
while questions waited for it. Here the API process keeps HTTP, keys, rate limits and serialisation,
and each worker process holds a RagService of its own (embedding model, guards, database pool) and
answers what it is sent over a pipe, on `threads` threads.

- A question goes to the live worker with the fewest in flight. ApiState.ask_slots, which wakes its
  waiters in arrival order, still bounds how many are answered at once.
- Workers are forked by a fork server that imported the service once (`forkserver` with preload):
  a worker starts in about a second and shares those modules' pages, instead of importing for five.
- A worker that dies (killed, out of memory) fails the questions it held with a 503
  `answer_worker_lost` and is replaced in the background; a question it never received is sent to
  another worker. A worker exits when the API process closes its pipe, or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from rag.answers import GroundedAnswer
from rag.blas import use_one_blas_thread
from rag.errors import MeshpilotError
from rag.settings import Settings
from serving.api.errors import ApiError, database_failure
from serving.api.startup_heap import freeze_startup_heap

if TYPE_CHECKING:  # ForkServerContext does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

log = logging.getLogger(__name__)

# What the fork server imports once, so that every worker it forks starts with them loaded.
PRELOAD = ["rag.service", "rag.database", "serving.api.answer_workers"]
START_TIMEOUT_S = 300.0
"""A worker loads its models and connects; the first export of the ONNX graph takes a minute."""
RESTART_DELAY_S = 2.0
"""Between attempts to replace a dead worker, where the replacement itself fails (database down)."""

Request = tuple[str, list[str], str | None, str | None]
"""question, groups, product, domain"""


class AnswerWorkerLost(ApiError):
    def __init__(self) -> None:
        super().__init__(
            503, "answer_worker_lost", "the process answering this question stopped; retry", {"Retry-After": "1"}
        )


class AnswerWorkerFailed(RuntimeError):
    """An unexpected error inside a worker; its traceback is in the worker's log."""


def worker_shape(settings: Settings) -> tuple[int, int]:
    """(processes, threads each) that answer one API process's questions; (0, 0): its own threadpool."""
    if not settings.answer_processes:
        return 0, 0
    processes = min(settings.answer_processes, settings.ask_concurrency)
    return processes, -(-settings.ask_concurrency // processes)


# --- in the worker process ---------------------------------------------------------------------------


def _serve(conn: Connection, settings: Settings, url: str, threads: int) -> None:
    """A worker's life: build the service, say ready, answer until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the API process stops us
    from rag.database import open_database
    from rag.embeddings import questions_only_embedder
    from rag.service import RagService

    use_one_blas_thread()
    try:
        worker_settings = settings.model_copy(update={"database_url": SecretStr(url)})
        db = open_database(worker_settings, migrate_schema=False)  # the API process migrated it
        service = RagService.build(worker_settings, db, embedder=questions_only_embedder(worker_settings))
        service.retriever.embedder.embed(["warm-up"])
    except BaseException as exc:  # the API process reports it; nothing here can
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", freeze_startup_heap()))
    sending = threading.Lock()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="answer")

    def answer(ident: int, request: Request) -> None:
        reply = _answer(service, request)
        with sending:
            try:
                conn.send((ident, *reply))
            except (OSError, ValueError):  # the API process is gone; the main thread sees it too
                pass
            except Exception as exc:  # a reply that does not pickle must still answer its question
                log.exception("answer worker %s: reply not sent", os.getpid())
                conn.send((ident, "failed", type(exc).__name__))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the API process closed the pipe or died
            break
        if message is None:
            break
        pool.submit(answer, *message)
    pool.shutdown(wait=True, cancel_futures=False)
    db.close()


def _answer(service: Any, request: Request) -> tuple[str, Any]:
    question, groups, product, domain = request
    try:
        return "ok", service.ask(question, groups=groups, product=product, domain=domain)
    except MeshpilotError as exc:
        return "raise", exc
    except Exception as exc:
        # SQLAlchemy's exceptions carry the statement and its connection: the API's answer crosses instead.
        answer = database_failure(exc)
        if answer is not None:
            return "api", (answer.status, answer.code, answer.message, answer.headers)
        log.exception("answer worker %s: unexpected error", os.getpid())
        return "failed", type(exc).__name__


# --- in the API process ------------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    frozen: int  # objects its start-up left out of the collector's full passes (startup_heap)
    waiting: dict[int, asyncio.Future[GroundedAnswer]] = field(default_factory=dict)
    alive: bool = True


class AnswerWorkers:
    """`processes` workers, each answering up to `threads` questions at once."""

    def __init__(self, settings: Settings, database_url: str, *, processes: int, threads: int) -> None:
        if processes < 1 or threads < 1:
            raise ValueError("answer workers need at least one process and one thread each")
        self._settings = settings
        self._url = database_url
        self.threads = threads
        use_one_blas_thread()  # before the fork server starts: it and the workers inherit the limit
        self._context: ForkServerContext | SpawnContext
        if "forkserver" in get_all_start_methods():
            forkserver = get_context("forkserver")
            forkserver.set_forkserver_preload(PRELOAD)
            self._context = forkserver
        else:  # Windows: each worker imports the service itself, seconds more at start
            self._context = get_context("spawn")
        self._ids = itertools.count()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.restarts = 0
        started = [self._start() for _ in range(processes)]
        try:
            self.workers = [self._wait_ready(*s) for s in started]
        except BaseException:
            for process, conn in started:
                conn.close()
                process.join(5)
                if process.is_alive():
                    process.kill()
            raise

    def _start(self) -> tuple[BaseProcess, Connection]:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve, args=(theirs, self._settings, self._url, self.threads), name="meshpilot-answer", daemon=True
        )
        process.start()
        theirs.close()
        return process, ours

    @staticmethod
    def _wait_ready(process: BaseProcess, conn: Connection) -> _Worker:
        if not conn.poll(START_TIMEOUT_S):
            raise MeshpilotError(f"an answer worker did not start within {START_TIMEOUT_S:.0f} s")
        try:
            kind, detail = conn.recv()
        except EOFError:
            raise MeshpilotError(f"an answer worker exited while starting (exit code {process.exitcode})") from None
        if kind != "ready":
            raise MeshpilotError(f"an answer worker could not start: {detail}")
        return _Worker(process, conn, frozen=int(detail))

    @property
    def alive(self) -> int:
        return sum(w.alive for w in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.alive and w.process.pid is not None]

    async def ask(self, question: str, *, groups: list[str], product: str | None, domain: str | None) -> GroundedAnswer:
        loop = self._attach()
        request: Request = (question, groups, product, domain)
        while True:
            live = [w for w in self.workers if w.alive]
            if not live:
                raise AnswerWorkerLost()
            worker = min(live, key=lambda w: len(w.waiting))
            ident = next(self._ids)
            try:
                worker.conn.send((ident, request))
            except (OSError, ValueError):  # it died while idle: this question never reached it
                self._lost(worker)
                continue
            reply: asyncio.Future[GroundedAnswer] = loop.create_future()
            worker.waiting[ident] = reply
            try:
                return await reply
            finally:
                worker.waiting.pop(ident, None)

    def _attach(self) -> asyncio.AbstractEventLoop:
        """Read the workers' pipes on the running loop (the first ask; the app's loop thereafter)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise RuntimeError("answer workers serve one event loop")
            self._loop = loop
            for worker in self.workers:
                if worker.alive:
                    loop.add_reader(worker.conn.fileno(), self._on_readable, worker)
        return loop

    def _on_readable(self, worker: _Worker) -> None:
        try:
            ident, kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        reply = worker.waiting.pop(ident, None)
        if reply is None or reply.done():  # its request was cancelled (the client went away)
            return
        if kind == "ok":
            reply.set_result(payload)
        elif kind == "raise":
            reply.set_exception(payload)
        elif kind == "api":
            reply.set_exception(ApiError(*payload))
        else:
            reply.set_exception(AnswerWorkerFailed(f"{payload} in answer worker {worker.process.pid}"))

    def _lost(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        if self._loop is not None:
            self._loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        for reply in worker.waiting.values():
            if not reply.done():
                reply.set_exception(AnswerWorkerLost())
        worker.waiting.clear()
        log.error(
            "answer worker %s stopped (exit code %s); starting another", worker.process.pid, worker.process.exitcode
        )
        if not self._closed:
            threading.Thread(target=self._replace, args=(worker,), name="answer-worker-restart", daemon=True).start()

    def _replace(self, dead: _Worker) -> None:
        dead.process.join(5)
        while not self._closed:
            try:
                fresh = self._wait_ready(*self._start())
            except MeshpilotError as exc:
                log.error("%s; trying again in %.0f s", exc, RESTART_DELAY_S)
                time.sleep(RESTART_DELAY_S)
                continue
            try:
                if self._loop is None:
                    self._adopt(dead, fresh)
                else:
                    self._loop.call_soon_threadsafe(self._adopt, dead, fresh)
            except RuntimeError:  # the loop closed meanwhile: the service is stopping
                fresh.conn.close()
            return

    def _adopt(self, dead: _Worker, fresh: _Worker) -> None:
        if self._closed:
            fresh.conn.close()
            return
        self.workers[self.workers.index(dead)] = fresh
        self.restarts += 1
        if self._loop is not None:
            self._loop.add_reader(fresh.conn.fileno(), self._on_readable, fresh)

    def _detach(self) -> None:
        for worker in self.workers:
            if worker.alive and self._loop is not None:
                self._loop.remove_reader(worker.conn.fileno())

    def close(self) -> None:
        """Stop every worker; questions still in flight are answered first (uvicorn drained them)."""
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                self._detach()
            elif loop.is_running():  # the lifespan closes the state from the threadpool
                detached = threading.Event()

                def detach() -> None:
                    self._detach()
                    detached.set()

                loop.call_soon_threadsafe(detach)
                detached.wait(5)
            else:
                self._detach()
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.alive = False
            worker.conn.close()
