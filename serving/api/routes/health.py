"""`/healthz` (the process answers), `/readyz` (database and models usable), `/metrics` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from serving.api.deps import StateDep
from serving.api.metrics import CONTENT_TYPE
from serving.api.readiness import readiness
from serving.api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Not ready: a check failed."}},
)
async def readyz(state: StateDep) -> JSONResponse:
    result = await run_in_threadpool(readiness, state)
    return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.status == "ready" else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    return Response(await run_in_threadpool(state.metrics.render), media_type=CONTENT_TYPE)
