"""The RAG service: question + caller's groups -> guards and retrieval -> answerer -> `GroundedAnswer`.

Guards stand at three boundaries (rag/guards/pipeline.py): the question (refused when it injects or
extracts; its embedding, computed once, serves both the detector and retrieval), the retrieved
passages (flagged ones dropped before any answerer sees them) and the answer with its quotes
(secrets and personal data redacted, foreign links removed, markup escaped, leaks withheld).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answers import Answerer, ExtractiveAnswerer, GroundedAnswer, LLMAnswerer
from rag.chat_models import ChatModel, chat_model_from_settings
from rag.database import Database
from rag.embeddings import Embedder, get_embedder
from rag.errors import UsageError
from rag.guards.documents import detector_fingerprint
from rag.guards.pipeline import BLOCKED, WITHHELD, GuardPipeline, default_guards
from rag.retrieval import HybridRetriever, RetrievedPassage
from rag.settings import Settings


@dataclass
class RagService:
    settings: Settings
    db: Database
    retriever: HybridRetriever
    answerer: Answerer
    guards: GuardPipeline | None = None
    """None = the default pipeline for these settings."""

    def __post_init__(self) -> None:
        self.pipeline = self.guards or default_guards(self.settings)

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
        return cls(settings, db, HybridRetriever.for_questions(db, embedder, settings), answerer)

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
        self.retriever.check_products(groups, products, domain)
        vector = self.retriever.embedder.embed([question])[0]
        checked = self.pipeline.check_input(question, vector)
        timings = {"input_ms": round(checked.ms, 2)}
        if not checked.passed:
            blocked = GroundedAnswer(
                answer=BLOCKED,
                grounded=False,
                notes=[f"input guard: {', '.join(checked.categories)}"],
                guard={"blocked": checked.categories, **timings},
            )
            return blocked, []
        retrieval = self.retriever.retrieve(
            question, groups=groups, products=products, domain=domain, query_vector=vector, check=False
        )
        screened = self.pipeline.screen_context([p.text for p in retrieval.passages], _stored_flags(retrieval.passages))
        passages = [retrieval.passages[i] for i in screened.kept]
        timings["context_ms"] = round(screened.ms, 2)
        result = self.answerer.answer(question, passages)
        result.retrieval_ms = retrieval.ms
        protected = self.answerer.protected_texts() if isinstance(self.answerer, LLMAnswerer) else []
        cleaned = self.pipeline.sanitize_output([result.answer, *(c.quote for c in result.citations)], protected)
        timings["output_ms"] = round(cleaned.ms, 2)
        guard: dict[str, object] = {**timings}
        if not screened.passed:
            guard["dropped_passages"] = len(retrieval.passages) - len(passages)
            result.notes.append(f"context guard dropped {guard['dropped_passages']} passage(s)")
        if not cleaned.passed:
            guard["redactions"] = cleaned.categories
            if "system_prompt_leak" in cleaned.categories:
                result = GroundedAnswer(WITHHELD, False, notes=["output guard: the reply repeated protected text"])
                result.retrieval_ms = retrieval.ms
            else:
                result.answer = cleaned.texts[0]
                result.citations = [
                    type(c)(c.n, c.product, c.source, c.title, c.chunk_id, quote)
                    for c, quote in zip(result.citations, cleaned.texts[1:], strict=True)
                ]
        result.guard = guard
        return result, passages


def _stored_flags(passages: list[RetrievedPassage]) -> list[list[str] | None]:
    """Verdicts taken at ingestion by today's detector; anything else is scanned again."""
    current = detector_fingerprint()
    return [p.guard_flags if p.guard_detector == current else None for p in passages]
