"""Request dependencies as `Annotated` aliases: routes declare what they need, tests override these.

FastAPI runs a plain `def` dependency in the threadpool: one hop each, for what only reads an
attribute. Those are `async def`, so they run on the event loop; `get_principal` sends to the
threadpool only what needs the database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from rag.database import Database
from rag.settings import Settings
from serving.api.errors import ApiError
from serving.api.keys import Principal, authenticate
from serving.api.metrics import ApiMetrics
from serving.api.ratelimit import RateDecision
from serving.api.state import ApiState

_bearer = HTTPBearer(auto_error=False, description="An API key from `meshpilot keys create`.")


async def get_state(request: Request) -> ApiState:
    state = getattr(request.app.state, "api", None)
    if not isinstance(state, ApiState):
        raise ApiError(503, "starting", "the service is starting; try again shortly")
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_database(state: StateDep) -> Database:
    return state.db


async def get_metrics(state: StateDep) -> ApiMetrics:
    return state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


async def get_principal(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller's key, checked and counted against its rate limit: on the event loop when the key is
    remembered (serving/api/key_cache.py) and its hit was counted ahead, else in the threadpool."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>", challenge)
    key = credentials.credentials
    known = state.keys.get(key)
    counted = state.limiter.hit_counted(known.key_id) if known is not None else None
    if known is not None and counted is not None:
        principal, decision = known, counted
    else:
        generation = state.keys.generation
        checked = await run_in_threadpool(_check_key, state, key, known)
        if checked is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key", challenge)
        principal, decision = checked
        if known is None:
            state.keys.put(key, principal, generation)
    if not decision.allowed:
        state.metrics.rate_limited.inc()
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {decision.limit} requests per minute exceeded; retry in {decision.retry_after_s} s",
            {"Retry-After": str(decision.retry_after_s), "X-RateLimit-Limit": str(decision.limit)},
        )
    return principal


def _check_key(state: ApiState, key: str, known: Principal | None) -> tuple[Principal, RateDecision] | None:
    """`known`, or the key's principal looked up (None: no such active key), and its hit counted."""
    with state.db.autocommit() as conn:  # one connection, two statements at most
        principal = known or authenticate(conn, key)
        if principal is None:
            return None
        return principal, state.limiter.hit(conn, principal.key_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise ApiError(403, "forbidden", f"key {principal.name!r} is not an admin key; this needs one")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
