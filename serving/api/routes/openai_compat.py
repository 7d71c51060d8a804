"""`/v1/models` and `/v1/chat/completions`: the RAG service and the copilot behind the OpenAI chat protocol.

Any OpenAI client works: base URL `<server>/v1`, an API key from `meshpilot keys create`. The last user
message is what the model acts on; the key's groups decide what it may read.

- `meshpilot-rag`: the message is a question, answered with citations.
- `meshpilot-copilot`: the message is handled as a copilot thread message. With the extra body field
  `thread` (a thread from POST /v1/copilot/threads): `approve`, `reject`, `status` or a question about
  it. Without: questions are answered as by meshpilot-rag, and drafting requests get how to start a
  thread (drafting needs the data, which a chat message does not carry).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from serving.api import copilot_threads, sse
from serving.api.completions import COPILOT_MODEL, RAG_MODEL, Reply, completion, completion_events, question_of
from serving.api.deps import MetricsDep, PrincipalDep, StateDep
from serving.api.errors import ApiError, error_responses
from serving.api.openai_schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
# A fixed creation time: the models are this service, not checkpoints with a date.
_CREATED = 1_767_225_600
MODELS = [ModelCard(id=model, created=_CREATED, owned_by="meshpilot") for model in (RAG_MODEL, COPILOT_MODEL)]


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
        "(in the last chunk when streaming). Optional extra fields `product` and `domain` narrow the search. "
        "Model `meshpilot-copilot` acts on the last user message as a copilot thread message: with the extra "
        "field `thread` (a thread id), `approve`, `reject` and `status` act on that draft and the extra field "
        "`thread` of the answer holds its state; questions are answered from the knowledge the key may read."
    ),
    responses={
        200: {"content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503),
    },
)
async def chat_completions(
    body: ChatCompletionRequest, principal: PrincipalDep, state: StateDep, metrics: MetricsDep
) -> ChatCompletion | StreamingResponse:
    if body.model not in {m.id for m in MODELS}:
        available = ", ".join(m.id for m in MODELS)
        raise ApiError(404, "model_not_found", f"unknown model {body.model[:80]!r}; available: {available}")
    question = question_of(body.messages)
    if not question or not question.strip():
        raise ApiError(422, "validation_error", "messages: the last user message must contain text (the question)")
    if body.model == COPILOT_MODEL:
        turn = await copilot_threads.chat(
            state, principal, body.thread, question, product=body.product, domain=body.domain
        )
        reply, answered = Reply.of_turn(turn), turn.answer is not None
    elif body.thread is not None:
        raise ApiError(400, "bad_request", f"`thread` is a field of model {COPILOT_MODEL}, not of {body.model}")
    else:
        result = await state.ask(question, groups=principal.groups, product=body.product, domain=body.domain)
        reply, answered = Reply.of(result), True
    if answered:
        metrics.answers.labels(str(reply.grounded).lower()).inc()
    if body.stream:
        return StreamingResponse(completion_events(reply, body.model), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    return completion(reply, body.model)
