"""`/v1/ask`: a grounded answer from the knowledge the caller's key may read, as JSON or SSE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from rag.answers import GroundedAnswer
from serving.api import sse
from serving.api.deps import MetricsDep, PrincipalDep, StateDep
from serving.api.errors import error_responses
from serving.api.schemas import AskRequest, AskResponse

router = APIRouter(prefix="/v1", tags=["ask"])

STREAM_DOC = (
    'With `stream: true` (or `Accept: text/event-stream`): `answer.delta` events `{"text"}` whose '
    "concatenation is the answer, then one `answer.done` event with the whole AskResponse."
)


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Ask a question",
    description="Answers from the knowledge products the key's groups may read, with numbered citations. " + STREAM_DOC,
    responses={
        200: {"content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 404, 409, 413, 422, 429, 502, 503),
    },
)
async def ask(
    body: AskRequest,
    principal: PrincipalDep,
    state: StateDep,
    metrics: MetricsDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AskResponse | StreamingResponse:
    result = await state.ask(body.question, groups=principal.groups, product=body.product, domain=body.domain)
    metrics.answers.labels(str(result.grounded).lower()).inc()
    response = AskResponse.of(result)
    if body.stream or sse.wants_stream(accept):
        return StreamingResponse(_events(result, response), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    return response


def _events(result: GroundedAnswer, response: AskResponse) -> Iterator[str]:
    for piece in sse.pieces(result.answer):
        yield sse.event({"text": piece}, "answer.delta")
    yield sse.event(response.model_dump(mode="json"), "answer.done")
