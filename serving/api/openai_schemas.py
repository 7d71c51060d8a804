"""Wire schemas of the OpenAI-compatible endpoints: the subset of the chat completions protocol we serve.

Requests accept and ignore the protocol's other parameters (temperature, top_p, ...): answers come
from the RAG service, which decides their wording. Responses carry extra fields, `citations` and
`grounded` (and `thread` for the copilot); the citations are also rendered in the message text for
clients that ignore them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.api.schemas import CitationOut, ProductName, ShortText, Text, ThreadId, ThreadState


class ContentPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    type: Annotated[str, StringConstraints(max_length=64)]
    text: Text | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | Annotated[list[ContentPart], Field(max_length=64)] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    model: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        examples=["meshpilot-rag"],
        description="meshpilot-rag or meshpilot-copilot; other names get 404 model_not_found.",
    )
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=256)]
    stream: bool | None = False
    # meshpilot extensions (pass with the SDK's extra_body): narrow the knowledge searched.
    product: ProductName | None = None
    domain: ShortText | None = None
    # meshpilot-copilot only: the draft thread the message is about (from POST /v1/copilot/threads).
    thread: ThreadId | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    citations: list[CitationOut] = Field(
        description="meshpilot: the passages the answer cites, numbered as in the text."
    )
    grounded: bool = Field(description="meshpilot: false when the answer is a refusal.")
    thread: ThreadState | None = Field(
        None, description="meshpilot-copilot: the thread's state after the message, when the request named one."
    )


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[CitationOut] | None = None
    grounded: bool | None = None
    thread: ThreadState | None = None
