from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from evals.beir import load_beir
from evals.ranking_metrics import mrr_at, ndcg_at, recall_at
from evals.retrieval_benchmark import EVAL_GROUP, fuse, product_name, ranked_documents, run, single_side_retriever
from rag.retrieval import HybridRetriever, Mode
from rag.settings import Settings
from tests.conftest import run_cli

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "external" / "beir" / "scifact"
needs_scifact = pytest.mark.skipif(
    not SCIFACT.is_dir(),
    reason=f"BEIR SciFact not found at {SCIFACT} (../shared/external); retrieval benchmark skipped",
)


def test_ranking_metrics_match_hand_computed_values() -> None:
    relevant = {"a": 1, "c": 2}
    ranked = ["b", "a", "c", "d"]
    dcg = 1 / math.log2(3) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert recall_at(ranked, relevant, 2) == 0.5 and recall_at(ranked, relevant, 10) == 1.0
    assert mrr_at(ranked, relevant, 10) == 0.5 and mrr_at(["x"], relevant, 10) == 0.0


def test_python_fusion_is_the_sql_fusion_formula() -> None:
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {2: 9.0, 4: 3.0}
    assert fuse(dense, lexical, 1.0)[:3] == [1, 2, 3]
    assert fuse(dense, lexical, 0.0)[0] == 2
    assert fuse(dense, lexical, 0.5)[0] == 2  # strong on both sides beats strong on one


def small_scifact(target: Path, queries: int = 25, distractors: int = 200) -> Path:
    """A slice of SciFact: the first test and train queries, their relevant abstracts, and distractors."""
    full = load_beir(SCIFACT)
    keep_q = {split: dict(list(full.qrels[split].items())[:queries]) for split in ("test", "train")}
    docs = {d for split in keep_q.values() for rel in split.values() for d in rel}
    docs |= set(list(full.corpus)[:distractors])
    (target / "qrels").mkdir(parents=True)
    with (target / "corpus.jsonl").open("w") as out:
        for doc_id in sorted(docs):
            title, text = full.corpus[doc_id]
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (target / "queries.jsonl").open("w") as out:
        for qid in {q for split in keep_q.values() for q in split}:
            out.write(json.dumps({"_id": qid, "text": full.queries[qid]}) + "\n")
    for split, qrels in keep_q.items():
        rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, rel in qrels.items() for d, r in rel.items()]
        (target / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return target


@needs_scifact
@pytest.mark.slow
def test_scifact_slice_hybrid_beats_each_side_and_the_index_is_cached(
    tmp_path: Path, db: Any, settings: Settings, embedder: Any
) -> None:
    dataset = load_beir(small_scifact(tmp_path / "scifact-slice"))
    first = run(db, settings, embedder, dataset, tune=True)
    modes = first["modes"]
    assert first["queries"] == 25 and not first["index_cached"] and first["documents"] == len(dataset.corpus)
    assert modes["hybrid"]["ndcg@10"] >= max(modes["dense"]["ndcg@10"], modes["fulltext"]["ndcg@10"]) - 0.02
    assert modes["hybrid"]["recall@100"] >= 0.9
    assert first["tuning"]["split"] == "train" and 0 <= first["dense_weight"] <= 1
    # Each side alone is scored over 200 chunks, not cut at the hybrid's candidates a side.
    assert first["candidates"] == {"dense": 200, "fulltext": 200, "hybrid": settings.candidates}
    assert settings.candidates < 200

    second = run(db, settings, embedder, dataset, modes=[Mode.HYBRID], limit_queries=5)
    assert second["index_cached"] and second["index_seconds"] == 0 and second["queries"] == 5

    # The SQL hybrid ranks documents as the Python fusion used for tuning does.
    retriever = HybridRetriever(db, embedder, settings)
    name = product_name(dataset, settings, embedder.model_id)
    _, question = dataset.split_queries("test")[0]
    kw: dict[str, Any] = {"groups": [EVAL_GROUP], "product": name, "top_k": 200, "check": False}
    dense = {p.chunk_id: p.score for p in retriever.retrieve(question, mode=Mode.DENSE, **kw).passages}
    lexical = {p.chunk_id: p.score for p in retriever.retrieve(question, mode=Mode.FULLTEXT, **kw).passages}
    hybrid = retriever.retrieve(question, mode=Mode.HYBRID, **kw).passages
    assert [p.chunk_id for p in hybrid][:10] == fuse(dense, lexical, settings.dense_weight)[:10]
    assert ranked_documents(hybrid)[:1]
    assert len(dense) == settings.candidates  # the production retriever: one side's candidates at most
    alone = single_side_retriever(db, embedder, settings)
    assert len(alone.retrieve(question, mode=Mode.DENSE, **kw).passages) == 200  # past ef_search too


@needs_scifact
def test_eval_retrieval_cli_rejects_bad_modes(cli_env: Path) -> None:
    code, _, err = run_cli("eval", "retrieval", "--beir", str(SCIFACT), "--modes", "dense,bm42")
    assert code == 2 and "--modes" in err


def test_eval_retrieval_cli_rejects_a_folder_that_is_not_beir(cli_env: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("eval", "retrieval", "--beir", str(tmp_path))
    assert code == 2 and "not a BEIR dataset" in err
