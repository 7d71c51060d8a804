"""Chat completions (`ChatCompletion` and its stream of chunks) made from a `GroundedAnswer`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from rag.answers import GroundedAnswer
from serving.api import sse
from serving.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
)
from serving.api.schemas import CitationOut

RAG_MODEL = "meshpilot-rag"


def question_of(messages: list[ChatMessage]) -> str | None:
    """The last user message's text: the RAG model answers one question at a time."""
    for message in reversed(messages):
        if message.role != "user" or message.content is None:
            continue
        if isinstance(message.content, str):
            return message.content
        return "\n".join(part.text for part in message.content if part.type == "text" and part.text) or None
    return None


def render(result: GroundedAnswer) -> str:
    """The answer with its sources listed under it, numbered as the [n] markers in the text."""
    if not result.citations:
        return result.answer
    lines = [f"[{c.n}] {c.product}/{c.source} — “{c.quote}”" for c in result.citations]
    return result.answer + "\n\nSources:\n" + "\n".join(lines)


def _citations(result: GroundedAnswer) -> list[CitationOut]:
    return [CitationOut.model_validate(c) for c in result.to_dict()["citations"]]


def completion(result: GroundedAnswer, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(index=0, message=AssistantMessage(content=render(result)), finish_reason="stop")],
        citations=_citations(result),
        grounded=result.grounded,
    )


def completion_events(result: GroundedAnswer, model: str) -> Iterator[str]:
    """The completion as SSE chunks: role, text pieces, a final chunk with the citations, [DONE]."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: Delta, finish: bool = False) -> str:
        body = ChatCompletionChunk(
            id=ident,
            created=created,
            model=model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason="stop" if finish else None)],
            citations=_citations(result) if finish else None,
            grounded=result.grounded if finish else None,
        )
        data = body.model_dump(mode="json")
        # finish_reason stays (null until the end, as OpenAI sends it); unset extras and delta fields go.
        for extra in ("citations", "grounded"):
            if data[extra] is None:
                del data[extra]
        data["choices"][0]["delta"] = {k: v for k, v in data["choices"][0]["delta"].items() if v is not None}
        return sse.event(data)

    yield chunk(Delta(role="assistant", content=""))
    for piece in sse.pieces(render(result)):
        yield chunk(Delta(content=piece))
    yield chunk(Delta(), finish=True)
    yield sse.event("[DONE]")
