"""`/v1/models` and `/v1/chat/completions`: the RAG service behind the OpenAI chat protocol.

Any OpenAI client works: base URL `<server>/v1`, an API key from `meshpilot keys create`, model
`meshpilot-rag`. The last user message is the question; the key's groups decide what it may read.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from serving.api import sse
from serving.api.completions import RAG_MODEL, completion, completion_events, question_of
from serving.api.deps import MetricsDep, PrincipalDep, ServiceDep
from serving.api.errors import ApiError, error_responses
from serving.api.openai_schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
# A fixed creation time: the model is this service, not a checkpoint with a date.
_CREATED = 1_767_225_600
MODELS = [ModelCard(id=RAG_MODEL, created=_CREATED, owned_by="meshpilot")]


@router.get("/models", response_model=ModelList, summary="List models", responses=error_responses(401, 429))
async def models(_: PrincipalDep) -> ModelList:
    return ModelList(data=MODELS)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat completion",
    description=(
        "OpenAI chat completions, `stream` true or false. The answer cites passages as [n] and lists them "
        "under 'Sources:' in the text; the extra fields `citations` and `grounded` carry the same as data "
        "(in the last chunk when streaming). Optional extra fields `product` and `domain` narrow the search."
    ),
    responses={
        200: {"content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 404, 409, 413, 422, 429, 502, 503),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: PrincipalDep,
    service: ServiceDep,
    metrics: MetricsDep,
) -> ChatCompletion | StreamingResponse:
    if body.model not in {m.id for m in MODELS}:
        available = ", ".join(m.id for m in MODELS)
        raise ApiError(404, "model_not_found", f"unknown model {body.model[:80]!r}; available: {available}")
    question = question_of(body.messages)
    if not question or not question.strip():
        raise ApiError(422, "validation_error", "messages: the last user message must contain text (the question)")
    result = await run_in_threadpool(
        service.ask, question, groups=principal.groups, product=body.product, domain=body.domain
    )
    metrics.answers.labels(str(result.grounded).lower()).inc()
    if body.stream:
        return StreamingResponse(completion_events(result, body.model), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    return completion(result, body.model)
