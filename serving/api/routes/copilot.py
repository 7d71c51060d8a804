"""`/v1/copilot/threads`: draft a data product from uploaded data, review it, approve or reject it.

Creating a thread runs the copilot (profile, standards, draft, validate) up to the approval interrupt;
the answer holds the checks and the drafted files. Nothing is published before approval, and
approving needs an admin key: it writes `<MESHPILOT_COPILOT_PUBLISH_ROOT>/<domain>/<name>` on the
server (replacing an earlier product of the same domain and name). A thread belongs to the key that
created it; other keys get 404, except admin keys, which may review every thread.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from serving.api import copilot_threads as threads
from serving.api.completions import Reply
from serving.api.deps import PrincipalDep, StateDep
from serving.api.errors import ApiError, error_responses
from serving.api.schemas import AskResponse, ThreadCreate, ThreadFields, ThreadMessage, ThreadOut, ThreadReply

router = APIRouter(prefix="/v1/copilot", tags=["copilot"])

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "domain", "owner", "file"],
    "properties": {
        **ThreadFields.model_json_schema()["properties"],
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV, TSV, Parquet, JSON lines or SQL DDL; the file name's suffix says which.",
        },
    },
}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
        "application/json": {"schema": ThreadCreate.model_json_schema()},
    },
}
_THREAD_ERRORS = error_responses(400, 401, 404, 409, 413, 422, 429, 503)


@router.post(
    "/threads",
    response_model=ThreadOut,
    status_code=201,
    summary="Draft a data product (create a thread)",
    description=(__doc__ or "").split("\n\n", 1)[1].replace("\n", " ")
    + " Send the data as multipart/form-data (`file` plus `name`, `domain`, `owner`) or as JSON with the"
    " file's text in `content`. Invalid data is a 400 `bad_source`; a valid draft is `awaiting_approval`.",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=error_responses(400, 401, 413, 415, 422, 429, 503),
)
async def create_thread(request: Request, principal: PrincipalDep, state: StateDep) -> ThreadOut:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        fields, filename, content = await _upload(request)
    elif content_type == "application/json":
        body = _parse(await request.body())
        fields, filename, content = body, body.filename, body.content.encode("utf-8")
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data (a file) or application/json")
    view = await run_in_threadpool(
        threads.create, state, principal, (fields.name, fields.domain, fields.owner), filename, content
    )
    return ThreadOut.of(view)


@router.get(
    "/threads/{thread}",
    response_model=ThreadOut,
    summary="Read a thread",
    description="Status, checks, drafted files and, once published, the artifacts written.",
    responses=_THREAD_ERRORS,
)
async def read_thread(thread: str, principal: PrincipalDep, state: StateDep) -> ThreadOut:
    return ThreadOut.of(await run_in_threadpool(threads.get, state, principal, thread))


@router.post(
    "/threads/{thread}/approve",
    response_model=ThreadOut,
    summary="Approve and publish (admin)",
    description="Resumes the approval interrupt: the draft is published on the server. Admin keys only; "
    "409 `not_awaiting_approval` unless the thread awaits approval.",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
async def approve_thread(thread: str, principal: PrincipalDep, state: StateDep) -> ThreadOut:
    return ThreadOut.of(await run_in_threadpool(threads.decide, state, principal, thread, True))


@router.post(
    "/threads/{thread}/reject",
    response_model=ThreadOut,
    summary="Reject",
    description="Resumes the approval interrupt with a no: nothing is written. "
    "409 `not_awaiting_approval` unless the thread awaits approval.",
    responses=_THREAD_ERRORS,
)
async def reject_thread(thread: str, principal: PrincipalDep, state: StateDep) -> ThreadOut:
    return ThreadOut.of(await run_in_threadpool(threads.decide, state, principal, thread, False))


@router.post(
    "/threads/{thread}/messages",
    response_model=ThreadReply,
    summary="Send a message",
    description="`approve` and `reject` decide the draft (as the routes of those names do), `status` describes "
    "it; anything else is a question answered from the knowledge products the key may read. Messages do not "
    "edit the draft: failed checks are revised by the validation loop (with a model configured), and another "
    "product is another thread.",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503),
)
async def post_message(thread: str, body: ThreadMessage, principal: PrincipalDep, state: StateDep) -> ThreadReply:
    turn = await threads.chat(state, principal, thread, body.content)
    assert turn.view is not None and turn.action != "help"  # a thread is named: no help turn
    answer = AskResponse.of(turn.answer) if turn.answer is not None else None
    reply = Reply.of_turn(turn).text
    return ThreadReply(action=turn.action, reply=reply, answer=answer, thread=ThreadOut.of(turn.view))


def _parse(raw: bytes) -> ThreadCreate:
    try:
        return ThreadCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None


async def _upload(request: Request) -> tuple[ThreadFields, str, bytes]:
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        values = {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str)}
        try:
            fields = ThreadFields.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
        if not isinstance(upload, UploadFile):
            raise RequestValidationError([{"loc": ("body", "file"), "msg": "a data file", "type": "missing"}])
        content = await upload.read()
    return fields, PurePosixPath((upload.filename or "").replace("\\", "/")).name, content
