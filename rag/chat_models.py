"""Chat models: the `ChatModel` protocol and the OpenAI-compatible client (vLLM, OpenAI, Ollama).

With no endpoint configured there is no chat model: the offline extractive answerer and the
deterministic drafters do the work. Nothing in the product fakes a model.
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from rag.errors import ModelUnavailable
from rag.settings import Settings


class Message(TypedDict):
    role: str
    content: str


class ChatModel(Protocol):
    model_id: str

    def complete(self, messages: list[Message], *, max_tokens: int | None = None) -> str: ...


class OpenAIChatModel:
    def __init__(
        self, base_url: str, model: str, api_key: str | None, *, timeout_s: float = 60.0, max_tokens: int = 512
    ) -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=1)
        self.model_id = model
        self.max_tokens = max_tokens

    def complete(self, messages: list[Message], *, max_tokens: int | None = None) -> str:
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self.model_id,
                messages=[{"role": m["role"], "content": m["content"]} for m in messages],  # type: ignore[misc]
                temperature=0.0,
                max_tokens=max_tokens or self.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise ModelUnavailable(f"chat model {self.model_id!r} failed: {exc}") from exc
        if not response.choices or response.choices[0].message.content is None:
            raise ModelUnavailable(f"chat model {self.model_id!r} returned no text")
        return response.choices[0].message.content


def chat_model_from_settings(settings: Settings) -> ChatModel | None:
    if not settings.llm_base_url:
        return None
    return OpenAIChatModel(
        settings.llm_base_url,
        settings.llm_model,
        settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
    )
