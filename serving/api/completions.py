"""Chat completions (`ChatCompletion` and its stream of chunks) made from a `Reply`: a grounded answer
(model meshpilot-rag) or a copilot turn (model meshpilot-copilot)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from rag.answers import GroundedAnswer
from serving.api import sse
from serving.api.copilot_threads import Turn
from serving.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
)
from serving.api.schemas import CitationOut, ThreadState

RAG_MODEL = "meshpilot-rag"
COPILOT_MODEL = "meshpilot-copilot"


def question_of(messages: list[ChatMessage]) -> str | None:
    """The last user message's text: both models act on one message at a time."""
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


@dataclass(frozen=True)
class Reply:
    """The assistant message's text and the extra fields that carry the same as data."""

    text: str
    grounded: bool
    citations: list[CitationOut] = field(default_factory=list)
    thread: ThreadState | None = None

    @classmethod
    def of(cls, result: GroundedAnswer) -> Reply:
        citations = [CitationOut.model_validate(c) for c in result.to_dict()["citations"]]
        return cls(render(result), result.grounded, citations)

    @classmethod
    def of_turn(cls, turn: Turn) -> Reply:
        """A decision, status or help text is not a refusal (grounded); an answer is as grounded as it is."""
        thread = ThreadState.of(turn.view) if turn.view is not None else None
        if turn.answer is None:
            return cls(turn.note, True, thread=thread)
        return replace(cls.of(turn.answer), thread=thread)


def completion(reply: Reply, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(index=0, message=AssistantMessage(content=reply.text), finish_reason="stop")],
        citations=reply.citations,
        grounded=reply.grounded,
        thread=reply.thread,
    )


def completion_events(reply: Reply, model: str) -> Iterator[str]:
    """The completion as SSE chunks: role, text pieces, a final chunk with the extra fields, [DONE]."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: Delta, finish: bool = False) -> str:
        body = ChatCompletionChunk(
            id=ident,
            created=created,
            model=model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason="stop" if finish else None)],
            citations=reply.citations if finish else None,
            grounded=reply.grounded if finish else None,
            thread=reply.thread if finish else None,
        )
        data = body.model_dump(mode="json")
        # finish_reason stays (null until the end, as OpenAI sends it); unset extras and delta fields go.
        for extra in ("citations", "grounded", "thread"):
            if data[extra] is None:
                del data[extra]
        data["choices"][0]["delta"] = {k: v for k, v in data["choices"][0]["delta"].items() if v is not None}
        return sse.event(data)

    yield chunk(Delta(role="assistant", content=""))
    for piece in sse.pieces(reply.text):
        yield chunk(Delta(content=piece))
    yield chunk(Delta(), finish=True)
    yield sse.event("[DONE]")
