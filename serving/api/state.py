"""What one app holds for its lifetime (`ApiState`): settings, database, the loaded models, the limiter.

Built once at start-up (loading the embedding model takes seconds) and closed at shutdown; nothing
else is kept between requests, so workers and replicas are interchangeable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from rag.answers import GroundedAnswer
from rag.chat_models import ChatModel, chat_model_from_settings
from rag.database import Database, open_database
from rag.embeddings import Embedder, get_embedder
from rag.errors import DatabaseUnavailable
from rag.service import RagService
from rag.settings import Settings
from serving.api.answer_workers import AnswerWorkers, worker_shape
from serving.api.key_cache import KeyCache
from serving.api.metrics import ApiMetrics
from serving.api.ratelimit import RateLimiter

log = logging.getLogger(__name__)
# How long a starting API waits for a remote PostgreSQL (compose starts both at once).
DATABASE_WAIT_S = 60.0


@dataclass
class ApiState:
    settings: Settings
    db: Database
    embedder: Embedder
    chat_model: ChatModel | None
    """The configured chat model (None: offline answerer and deterministic drafters)."""
    service: RagService
    limiter: RateLimiter
    metrics: ApiMetrics
    owns_db: bool
    ask_slots: asyncio.Semaphore
    """Answers computed at once (settings.ask_concurrency). asyncio's semaphore wakes its waiters in
    arrival order: under load a question waits its turn, then gets the cores, instead of every
    question in flight sharing them, which stretched the slowest ones (p95 1.6x the median)."""
    workers: AnswerWorkers | None = None
    """The processes answering questions (settings.answer_processes); None = this process's threadpool."""
    keys: KeyCache = field(default_factory=KeyCache)

    @classmethod
    def open(
        cls,
        settings: Settings,
        metrics: ApiMetrics,
        *,
        db: Database | None = None,
        embedder: Embedder | None = None,
        chat_model: ChatModel | None = None,
    ) -> ApiState:
        owns_db = db is None
        database = db or _open_with_retries(settings)
        try:
            model = embedder or get_embedder(settings)
            chat = chat_model or chat_model_from_settings(settings)
            service = RagService.build(settings, database, embedder=model, chat_model=chat)
        except Exception:
            if owns_db:
                database.close()
            raise
        limiter = RateLimiter(settings.api_rate_limit_per_minute)
        slots = asyncio.Semaphore(settings.ask_concurrency)
        workers = None
        processes, threads = worker_shape(settings)
        # Workers build their models from the settings: one handed in here (a test's) stays in this process.
        # They start after this process's service, which exported and quantized the graphs they load.
        if processes and embedder is None and chat_model is None:
            try:
                url = database.engine.url.render_as_string(hide_password=False)
                workers = AnswerWorkers(settings, url, processes=processes, threads=threads)
            except Exception:
                if owns_db:
                    database.close()
                raise
        return cls(settings, database, model, chat, service, limiter, metrics, owns_db, slots, workers)

    async def ask(self, question: str, *, groups: list[str], product: str | None, domain: str | None) -> GroundedAnswer:
        """`service.ask` in an answer worker (or this process's threadpool) once one of the `ask_slots` is free."""
        async with self.ask_slots:
            if self.workers is not None:
                return await self.workers.ask(question, groups=groups, product=product, domain=domain)
            return await run_in_threadpool(self.service.ask, question, groups=groups, product=product, domain=domain)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()
        if self.owns_db:
            self.db.close()


def _open_with_retries(settings: Settings) -> Database:
    deadline = time.monotonic() + (DATABASE_WAIT_S if settings.database_url is not None else 0)
    while True:
        try:
            return open_database(settings)
        except DatabaseUnavailable as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("waiting for the database: %s", exc)
            time.sleep(2)
