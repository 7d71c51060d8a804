"""HTTP errors: every failure is a JSON body `{"error": {"code", "message"}}` with a stable `code`.

`ApiError` is raised by the HTTP layer itself (auth, limits, unknown models); the rag package's
`MeshpilotError`s are mapped here, at the edge, and nowhere else. An unexpected exception becomes a
500 `internal_error` whose message says nothing about the internals; the traceback goes to the log
(never the request body or headers, which may hold keys).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    DatabaseUnavailable,
    EmbeddingModelMismatch,
    MeshpilotError,
    ModelUnavailable,
    NotFound,
    UsageError,
)

log = logging.getLogger(__name__)

# The most specific class wins (checked in this order).
STATUS_OF: list[tuple[type[MeshpilotError], int]] = [
    (UsageError, 400),
    (NotFound, 404),
    (EmbeddingModelMismatch, 409),
    (ModelUnavailable, 502),
    (DatabaseUnavailable, 503),
    (MeshpilotError, 409),  # user-facing conditions such as "another ingest of this product is running"
]
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def status_of(exc: MeshpilotError) -> int:
    return next(status for cls, status in STATUS_OF if isinstance(exc, cls))


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is not echoed back: it may be large, or be somebody's secret.
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _meshpilot_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MeshpilotError)
    status = status_of(exc)
    code = "conflict" if type(exc) is MeshpilotError else exc.code
    return error_response(status, code, str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "malformed_json", "the request body is not valid JSON", details=details)
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where, msg = ".".join(str(p) for p in first["loc"]), str(first["msg"])
    return error_response(422, "validation_error", f"{where}: {msg}" if where else msg, details=details)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route; see /docs"
    return error_response(exc.status_code, code, message, dict(exc.headers) if exc.headers else None)


def database_failure(exc: BaseException) -> ApiError | None:
    """What the API answers for a database failure; None where it is a bug (a 500). One mapping for the
    app's handlers and for the answer workers (serving/api/answer_workers.py), whose exceptions cross a
    pipe as this answer."""
    if isinstance(exc, sa.exc.TimeoutError):
        # Every pooled connection stayed busy for the pool's whole timeout: overload, not a bug.
        return ApiError(503, "overloaded", "the service is overloaded; retry shortly", {"Retry-After": "1"})
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return ApiError(503, DatabaseUnavailable.code, "the database is unavailable; try again shortly")
    if isinstance(exc, sa.exc.DataError):
        # Input the schema let through but PostgreSQL refuses (an out-of-range number, say).
        return ApiError(400, "bad_request", "the database refused a value of this request")
    return None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    answer = database_failure(exc)
    if answer is None:
        return await _internal_error(request, exc)
    if answer.status == 503:
        log.warning("%s during %s %s: %s", answer.code, request.method, request.url.path, type(exc).__name__)
    return await _api_error(request, answer)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The server (uvicorn) logs the traceback when the exception leaves the app.
    log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(MeshpilotError, _meshpilot_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa.exc.DBAPIError, _database_error)
    app.add_exception_handler(sa.exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _internal_error)


# Documented once, referenced by every route's `responses=`.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": _HTTP_CODES.get(s, "error"), "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }
