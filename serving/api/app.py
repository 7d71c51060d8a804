"""The app factory: `create_app(settings)` builds the one FastAPI app every deployment runs.

Stateless by design: what lives in the process (settings, a connection pool, the loaded embedding
model) is rebuilt identically by every worker and replica; keys, rate-limit counts, products and
webhook deliveries live in PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from rag.blas import use_one_blas_thread
from rag.chat_models import ChatModel
from rag.database import Database
from rag.embeddings import Embedder
from rag.settings import Settings
from serving.api.errors import install_error_handlers
from serving.api.key_cache import KeyCache
from serving.api.metrics import ApiMetrics
from serving.api.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from serving.api.routes import ask, copilot, health, ingest, openai_compat, products, web, webhooks
from serving.api.startup_heap import freeze_startup_heap
from serving.api.state import ApiState

DESCRIPTION = """Grounded answers from your data mesh's knowledge, only from what the caller may read, and a
copilot that drafts validated data products from your data and publishes them once approved.

Authenticate with `Authorization: Bearer <key>` (`meshpilot keys create`). Errors are JSON
`{"error": {"code", "message"}}` with a stable `code`.
"""


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    embedder: Embedder | None = None,
    chat_model: ChatModel | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The API. `db`, `embedder` and `chat_model` default to what `settings` configure; tests pass
    the session's own so that nothing loads twice. `freeze_heap`: a serving process's own, whose
    start-up objects then leave the collector's full passes (`startup_heap`); not a test process's."""
    use_one_blas_thread()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(
            ApiState.open, settings, metrics, db=db, embedder=embedder, chat_model=chat_model
        )
        app.state.api = state
        if freeze_heap:
            freeze_startup_heap()  # before the first request: its 0.3 s pause costs no one
        engine = state.db.engine
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        listener = asyncio.create_task(state.keys.listen((list(args), dict(kwargs))), name="key-changes")
        try:
            yield
        finally:
            del app.state.api
            await KeyCache.stop(listener)
            await run_in_threadpool(state.close)

    app = FastAPI(
        title="meshpilot",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    for module in (ask, products, ingest, copilot, openai_compat, webhooks, health, web):
        app.include_router(module.router)
    app.mount("/static", web.static_files(), name="static")

    # The last added runs first: CORS (only when origins are configured: closed by default) answers
    # preflights, observability sees every response (413s included), the body limit runs before
    # anything reads the body.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshpilot")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory` and `meshpilot serve --workers N`: each worker reads MESHPILOT_* itself."""
    return create_app(Settings(), freeze_heap=True)
