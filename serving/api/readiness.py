"""Readiness (`Readiness`): can this instance answer? The database and every configured model."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import text

from rag.embeddings import query_precision
from rag.migrations import MIGRATIONS
from serving.api.schemas import Readiness, ReadinessCheck
from serving.api.state import ApiState

PROBE_TIMEOUT_S = 3.0


def _database(state: ApiState) -> ReadinessCheck:
    try:
        with state.db.engine.connect() as conn:
            version = conn.execute(text("SELECT coalesce(max(version), 0) FROM schema_migrations")).scalar_one()
    except Exception as exc:  # any failure means not ready; the type is enough, the URL stays out
        return ReadinessCheck(ok=False, detail=f"unreachable ({type(exc).__name__})")
    latest = MIGRATIONS[-1][0]
    if version < latest:
        return ReadinessCheck(ok=False, detail=f"schema at version {version}, this code needs {latest}")
    return ReadinessCheck(ok=True, detail=f"schema version {version}")


def _embedder(state: ApiState) -> ReadinessCheck:
    started = time.perf_counter()
    # Passages and questions: the bundled MiniLM embeds questions on its int8 twin by default.
    questions = state.service.retriever.embedder
    models = [state.embedder] if questions is state.embedder else [state.embedder, questions]
    try:
        ok = all(m.embed(["readiness probe"]).shape == (1, state.embedder.dimension) for m in models)
    except Exception as exc:  # a remote embeddings endpoint down, typically
        return ReadinessCheck(ok=False, detail=f"{state.embedder.model_id} failed ({type(exc).__name__})")
    ms = (time.perf_counter() - started) * 1000
    precision = f", questions {query_precision(questions)}" if len(models) > 1 else ""
    return ReadinessCheck(
        ok=ok, detail=f"{state.embedder.model_id}, {state.embedder.dimension} dimensions{precision}, {ms:.0f} ms"
    )


def _chat_model(state: ApiState) -> ReadinessCheck:
    settings = state.settings
    if not settings.llm_base_url:
        return ReadinessCheck(ok=True, detail="none configured: offline extractive answers")
    headers = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"} if settings.llm_api_key else {}
    try:
        response = httpx.get(settings.llm_base_url.rstrip("/") + "/models", headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return ReadinessCheck(ok=False, detail=f"{settings.llm_model}: endpoint unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return ReadinessCheck(ok=False, detail=f"{settings.llm_model}: endpoint answered {response.status_code}")
    return ReadinessCheck(ok=True, detail=f"{settings.llm_model} at the configured endpoint")


def _answer_workers(state: ApiState) -> ReadinessCheck:
    workers = state.workers
    if workers is None:
        return ReadinessCheck(ok=True, detail="none: questions are answered in the API process")
    restarts = f", {workers.restarts} replaced" if workers.restarts else ""
    return ReadinessCheck(
        ok=workers.alive > 0,
        detail=f"{workers.alive} of {len(workers.workers)} processes alive, {workers.threads} threads each{restarts}",
    )


def readiness(state: ApiState) -> Readiness:
    checks = {
        "database": _database(state),
        "embedding_model": _embedder(state),
        "chat_model": _chat_model(state),
        "answer_workers": _answer_workers(state),
    }
    return Readiness(status="ready" if all(c.ok for c in checks.values()) else "not_ready", checks=checks)
