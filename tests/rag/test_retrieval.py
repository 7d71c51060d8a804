from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from rag.errors import EmbeddingModelMismatch, NotFound, UsageError
from rag.retrieval import HybridRetriever, Mode
from rag.settings import Settings

CANARY = "CANARY-FIN-7Q4X-ORCHID"
CANARY_QUESTION = "What is the code name of the FY2027 revenue forecast model?"


@pytest.fixture(scope="module")
def retriever(db: Any, embedder: Any, settings: Settings, samples: Any) -> HybridRetriever:
    return HybridRetriever(db, embedder, settings)


@pytest.mark.parametrize("mode", list(Mode))
def test_each_mode_finds_the_supporting_passage(retriever: HybridRetriever, mode: Mode) -> None:
    result = retriever.retrieve("How often do batch data products need to be refreshed?", groups=[], mode=mode)
    assert result.passages[0].source == "slo-defaults.md"
    assert "24 hours" in " ".join(p.text for p in result.passages[:3])


def test_hybrid_scores_are_ordered_and_carry_both_signals(retriever: HybridRetriever) -> None:
    result = retriever.retrieve("SEV1 acknowledgement time for on-call", groups=["sre"], top_k=10)
    scores = [p.score for p in result.passages]
    assert scores == sorted(scores, reverse=True)
    assert result.passages[0].product == "platform-runbooks"
    assert result.passages[0].lexical is not None and 0 < result.passages[0].dense <= 1


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("groups", [[], ["sales"], ["sre", "data-platform"], ["FINANCE"], ["finance-team"]])
def test_restricted_passages_never_reach_callers_outside_their_groups(
    retriever: HybridRetriever, mode: Mode, groups: list[str]
) -> None:
    result = retriever.retrieve(CANARY_QUESTION + " " + CANARY, groups=groups, mode=mode, top_k=50)
    assert result.passages, "other products still answer"
    assert all(p.product != "finance-contracts" for p in result.passages)
    assert all(CANARY not in p.text for p in result.passages)


def test_the_permission_filter_is_inside_the_top_n(retriever: HybridRetriever) -> None:
    """With the finance group the canary is found; without it, top-N is filled from other products
    (a post-filter would return fewer rows), so the predicate runs before the limit."""
    allowed = retriever.retrieve(CANARY_QUESTION, groups=["finance"], top_k=3)
    assert CANARY in allowed.passages[0].text
    denied = retriever.retrieve(CANARY_QUESTION, groups=[], top_k=20)
    assert len(denied.passages) == 20


def test_product_and_domain_filters(retriever: HybridRetriever) -> None:
    by_product = retriever.retrieve("refresh schedule", groups=["sales"], product="sales-analytics", top_k=20)
    assert {p.product for p in by_product.passages} == {"sales-analytics"}
    by_domain = retriever.retrieve("incident severity", groups=["sre"], domain="platform", top_k=20)
    assert {p.product for p in by_domain.passages} == {"platform-runbooks"}


def test_a_product_the_caller_cannot_read_looks_absent(retriever: HybridRetriever) -> None:
    with pytest.raises(NotFound):
        retriever.retrieve("anything", groups=["sales"], product="finance-contracts")
    with pytest.raises(NotFound):
        retriever.retrieve("anything", groups=[], product="no-such-product")


def test_empty_question_is_a_usage_error(retriever: HybridRetriever) -> None:
    with pytest.raises(UsageError):
        retriever.retrieve("   ", groups=[])


def test_querying_with_another_model_is_a_clear_error(db: Any, settings: Settings, samples: Any) -> None:
    class OtherModel:
        model_id = "other/model"
        dimension = 384

        def embed(self, texts: Any) -> Any:
            raise AssertionError("must fail before embedding")

    with pytest.raises(EmbeddingModelMismatch, match="mesh-standards"):
        HybridRetriever(db, OtherModel(), settings).retrieve("refresh", groups=[])


def test_dense_side_uses_the_hnsw_index(db: Any, retriever: HybridRetriever) -> None:
    with db.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = (
            conn.execute(
                text(
                    "EXPLAIN SELECT id FROM chunks WHERE embedding_dim = 384"
                    " ORDER BY embedding::vector(384) <=> (SELECT embedding::vector(384) FROM chunks LIMIT 1) LIMIT 100"
                )
            )
            .scalars()
            .all()
        )
    assert any("chunks_embedding_384_hnsw" in line for line in plan)
