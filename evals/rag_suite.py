"""`meshpilot eval rag`: answer and retrieval quality on the golden questions, on Ragas.

Always (no model needed): Ragas' IDBasedContextPrecision/Recall against the reference chunks,
RougeScore and NonLLMStringSimilarity of the answer against the reference answer, and our own
citation precision, citation hit rate, refusal accuracy and false-refusal rate. With a judge model
(any OpenAI-compatible server, e.g. vLLM): also Ragas' Faithfulness, ResponseRelevancy and
LLMContextPrecisionWithReference. Unanswerable questions are asked as a caller who may read every
product (the hardest case for refusing).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

from evals.calibration import ALL_GROUPS, GoldenQuestion, load_golden
from evals.offline import disable_telemetry
from rag.chat_models import ChatModel
from rag.citations import CITATION, check_sentence
from rag.database import Database
from rag.embeddings import Embedder
from rag.samples import ingest_samples
from rag.service import RagService
from rag.settings import Settings
from rag.terms import content_terms, split_sentences

OFFLINE_METRICS = ("id_context_precision", "id_context_recall", "rouge_l", "string_similarity")
JUDGE_METRICS = ("faithfulness", "answer_relevancy", "llm_context_precision_with_reference")


@dataclass
class Judge:
    base_url: str
    model: str = "default"
    api_key: str | None = None


@dataclass
class Case:
    id: str
    question: str
    groups: list[str]
    answerable: bool
    grounded: bool
    answer: str
    reference: str | None
    retrieved_ids: list[int]
    reference_ids: list[int]
    cited_ids: list[int]
    citation_support: list[bool]
    contexts: list[str] = field(default_factory=list, repr=False)  # passage texts, for the judge
    scores: dict[str, float] = field(default_factory=dict)


def thresholds_path() -> Path:
    return Path(str(resources.files("evals").joinpath("thresholds.yaml")))


def load_thresholds(path: Path | None = None) -> dict[str, float]:
    data = yaml.safe_load((path or thresholds_path()).read_text(encoding="utf-8"))
    return {k: float(v) for k, v in data["rag"].items()}


def _normal(value: str) -> str:
    return " ".join(value.split())


def reference_chunks(db: Database, q: GoldenQuestion) -> list[int]:
    """Chunks of the reference document that contain the reference quote (or overlap it most)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
                " JOIN knowledge_products p ON p.id = c.product_id"
                " WHERE p.name = :p AND d.source = :s ORDER BY c.position"
            ),
            {"p": q.product, "s": q.source},
        ).all()
    quote = _normal(q.quote or "")
    hits = [r.id for r in rows if quote and quote in _normal(r.text)]
    if hits or not rows:
        return hits
    terms = set(content_terms(quote))
    best = max(rows, key=lambda r: len(terms & set(content_terms(r.text))))
    return [best.id]


def _plain(answer: str) -> str:
    return _normal(CITATION.sub("", answer))


def _run_cases(service: RagService, db: Database, golden: list[GoldenQuestion], products: list[str]) -> list[Case]:
    cases = []
    for q in golden:
        groups = q.groups if q.answerable else ALL_GROUPS
        # Only the sample products: other knowledge in the same database must not change the score.
        answer, passages = service.ask_with_passages(q.question, groups=groups, products=products)
        by_chunk = {p.chunk_id: p.text for p in passages}
        support = []
        if answer.grounded:
            numbered = {c.n: by_chunk.get(c.chunk_id, c.quote) for c in answer.citations}
            texts = [numbered[n] for n in sorted(numbered)]
            support = [check_sentence(s, texts).supported for s in split_sentences(answer.answer)]
        cases.append(
            Case(
                id=q.id,
                question=q.question,
                groups=groups,
                answerable=q.answerable,
                grounded=answer.grounded,
                answer=answer.answer,
                reference=q.answer,
                retrieved_ids=[p.chunk_id for p in passages],
                reference_ids=reference_chunks(db, q) if q.answerable else [],
                cited_ids=[c.chunk_id for c in answer.citations],
                citation_support=support,
                contexts=[p.text for p in passages],
            )
        )
    return cases


class _RagasEmbeddings:
    """Our embedder in the shape Ragas asks for (built lazily: ragas imports are heavy)."""

    @staticmethod
    def wrap(embedder: Embedder) -> Any:
        from ragas.embeddings.base import BaseRagasEmbeddings

        class Wrapped(BaseRagasEmbeddings):
            def embed_query(self, text: str) -> list[float]:
                return [float(x) for x in embedder.embed([text])[0]]

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return [[float(x) for x in row] for row in embedder.embed(texts)]

            async def aembed_query(self, text: str) -> list[float]:
                return self.embed_query(text)

            async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
                return self.embed_documents(texts)

        return Wrapped()


def _ragas_scores(cases: list[Case], embedder: Embedder, judge: Judge | None) -> None:
    disable_telemetry()
    from ragas import EvaluationDataset, SingleTurnSample, evaluate
    from ragas.dataset_schema import EvaluationResult

    # Ragas 0.4 points these imports at `ragas.metrics.collections`, whose metrics its own
    # `evaluate()` does not accept yet; the classic classes are the ones evaluate() runs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import (
            Faithfulness,
            IDBasedContextPrecision,
            IDBasedContextRecall,
            LLMContextPrecisionWithReference,
            NonLLMStringSimilarity,
            ResponseRelevancy,
            RougeScore,
        )
    from ragas.run_config import RunConfig

    scored = [c for c in cases if c.answerable]
    samples: list[Any] = [
        SingleTurnSample(
            user_input=c.question,
            retrieved_contexts=c.contexts or [""],
            retrieved_context_ids=[str(i) for i in c.retrieved_ids] or ["none"],
            reference_context_ids=[str(i) for i in c.reference_ids] or ["none"],
            response=_plain(c.answer),
            reference=c.reference or "",
        )
        for c in scored
    ]
    metrics: list[Any] = [
        IDBasedContextPrecision(name="id_context_precision"),
        IDBasedContextRecall(name="id_context_recall"),
        RougeScore(name="rouge_l", rouge_type="rougeL", mode="fmeasure"),
        NonLLMStringSimilarity(name="string_similarity"),
    ]
    llm = None
    if judge is not None:
        from langchain_openai import ChatOpenAI
        from ragas.llms import LangchainLLMWrapper

        chat = ChatOpenAI(
            base_url=judge.base_url,
            model=judge.model,
            api_key=judge.api_key or "unused",
            temperature=0,
            timeout=120,
            max_retries=1,
        )
        with warnings.catch_warnings():  # llm_factory's client is for the new metrics, not evaluate()'s
            warnings.simplefilter("ignore", DeprecationWarning)
            llm = LangchainLLMWrapper(chat)
        metrics += [
            Faithfulness(name="faithfulness"),
            ResponseRelevancy(name="answer_relevancy", strictness=1),
            LLMContextPrecisionWithReference(name="llm_context_precision_with_reference"),
        ]
    dataset = EvaluationDataset(samples=samples)
    # evaluate() is deprecated in favour of @experiment, which has no runner for these classic
    # metrics yet; it is still Ragas' evaluation API in 0.4.3 (pinned in requirements.lock).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = evaluate(
            dataset,
            metrics=metrics,
            llm=llm,
            embeddings=_RagasEmbeddings.wrap(embedder) if judge else None,
            show_progress=False,
            raise_exceptions=False,
            run_config=RunConfig(timeout=180, max_retries=1, max_workers=4),
        )
    assert isinstance(result, EvaluationResult)
    table = result.to_pandas()
    # Ragas names some columns after their options, e.g. "rouge_l(mode=fmeasure)".
    columns = {
        m.name: next((c for c in table.columns if c == m.name or c.startswith(f"{m.name}(")), None) for m in metrics
    }
    for case, (_, row) in zip(scored, table.iterrows(), strict=True):
        for name, column in columns.items():
            value = row.get(column) if column else None
            case.scores[name] = float(value) if value is not None else math.nan


def _mean(values: list[float]) -> float | None:
    kept = [v for v in values if not math.isnan(v)]
    return round(sum(kept) / len(kept), 4) if kept else None


def run_rag_suite(
    db: Database,
    settings: Settings,
    embedder: Embedder,
    *,
    chat_model: ChatModel | None = None,
    judge: Judge | None = None,
) -> dict[str, Any]:
    products = [r.product for r in ingest_samples(db, settings, embedder)]
    service = RagService.build(settings, db, embedder=embedder, chat_model=chat_model)
    golden = load_golden()
    cases = _run_cases(service, db, golden, products)
    _ragas_scores(cases, embedder, judge)

    answerable = [c for c in cases if c.answerable]
    unanswerable = [c for c in cases if not c.answerable]
    grounded = [c for c in answerable if c.grounded]
    support = [s for c in cases for s in c.citation_support]
    metrics: dict[str, float | None] = {
        name: _mean([c.scores.get(name, math.nan) for c in answerable])
        for name in (*OFFLINE_METRICS, *(JUDGE_METRICS if judge else ()))
    }
    metrics["citation_precision"] = round(sum(support) / len(support), 4) if support else None
    metrics["citation_hit_rate"] = (
        round(sum(bool(c.cited_ids) and c.cited_ids[0] in c.reference_ids for c in grounded) / len(grounded), 4)
        if grounded
        else None
    )
    metrics["refusal_accuracy"] = round(sum(not c.grounded for c in unanswerable) / len(unanswerable), 4)
    metrics["false_refusal_rate"] = round(sum(not c.grounded for c in answerable) / len(answerable), 4)

    thresholds = load_thresholds()
    gates = {}
    for name, bound in thresholds.items():
        if name.endswith("_rate_max"):
            value = metrics.get(name.removesuffix("_max"))
            ok = value is not None and value <= bound
        else:
            value = metrics.get(name)
            ok = value is not None and value >= bound
        gates[name] = {"value": value, "bound": bound, "passed": ok}
    misses = [
        f"- {c.id} ({'answerable' if c.answerable else 'unanswerable'}): {'answered' if c.grounded else 'refused'}"
        f" — {c.question}"
        for c in cases
        if c.grounded != c.answerable
    ]
    return {
        "suite": "rag",
        "answerer": "llm" if chat_model else "extractive",
        "judge": judge.model if judge else None,
        "questions": len(cases),
        "metrics": metrics,
        "thresholds": thresholds,
        "gates": gates,
        "passed": all(g["passed"] for g in gates.values()),
        "misses": misses,
        "cases": [{k: v for k, v in asdict(c).items() if k != "contexts"} for c in cases],
    }
