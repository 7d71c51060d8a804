"""The RAG service: question + caller's groups -> retrieval -> answerer -> `GroundedAnswer`."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answers import Answerer, ExtractiveAnswerer, GroundedAnswer, LLMAnswerer
from rag.chat_models import ChatModel, chat_model_from_settings
from rag.database import Database
from rag.embeddings import Embedder, get_embedder
from rag.errors import UsageError
from rag.retrieval import HybridRetriever, RetrievedPassage
from rag.settings import Settings


@dataclass
class RagService:
    settings: Settings
    db: Database
    retriever: HybridRetriever
    answerer: Answerer

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        *,
        embedder: Embedder | None = None,
        chat_model: ChatModel | None = None,
    ) -> RagService:
        embedder = embedder or get_embedder(settings)
        model = chat_model or chat_model_from_settings(settings)
        answerer: Answerer = LLMAnswerer(model) if model is not None else ExtractiveAnswerer()
        return cls(settings, db, HybridRetriever(db, embedder, settings), answerer)

    def ask(
        self,
        question: str,
        *,
        groups: list[str],
        product: str | None = None,
        domain: str | None = None,
    ) -> GroundedAnswer:
        return self.ask_with_passages(question, groups=groups, products=[product] if product else None, domain=domain)[
            0
        ]

    def ask_with_passages(
        self,
        question: str,
        *,
        groups: list[str],
        products: list[str] | None = None,
        domain: str | None = None,
    ) -> tuple[GroundedAnswer, list[RetrievedPassage]]:
        """The answer and the passages it was drawn from (what evaluations score)."""
        question = question.strip()
        if not question:
            raise UsageError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise UsageError(f"the question is longer than {self.settings.max_question_chars} characters")
        retrieval = self.retriever.retrieve(question, groups=groups, products=products, domain=domain)
        result = self.answerer.answer(question, retrieval.passages)
        result.retrieval_ms = retrieval.ms
        return result, retrieval.passages
