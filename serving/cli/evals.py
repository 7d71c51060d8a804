"""`meshpilot eval ...`: evaluation suites (more arrive with the evals issue)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evals.calibration import calibrate, features, load_golden
from rag.embeddings import get_embedder
from rag.errors import UsageError
from rag.retrieval import HybridRetriever, Mode
from rag.samples import ingest_samples
from serving.cli.common import database, print_json, progress_bar, settings_from, stdout

app = typer.Typer(help="Evaluation suites.", no_args_is_help=True)


@app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Sweep the extractive answerer's refusal thresholds over the golden questions.

    Example: meshpilot eval calibrate --json
    """
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        embedder = get_embedder(settings)
        ingest_samples(db, settings, embedder)
        result = calibrate(features(HybridRetriever(db, embedder, settings), load_golden()))
    finally:
        db.close()
    if json_out:
        print_json(result)
        return
    stdout.print(
        f"{result['questions']} questions: best accuracy {result['best_accuracy']} at {result['suggested']}; "
        f"current thresholds {result['current']} give {result['current_accuracy']}"
    )


@app.command("retrieval")
def retrieval_cmd(
    ctx: typer.Context,
    beir: Annotated[Path, typer.Option("--beir", help="A BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/).")],
    modes: Annotated[str, typer.Option(help="Comma-separated: dense, fulltext, hybrid.")] = "dense,fulltext,hybrid",
    limit_queries: Annotated[int | None, typer.Option(min=1, help="Only the first N queries of the split.")] = None,
    split: Annotated[str, typer.Option(help="The qrels split to score.")] = "test",
    tune: Annotated[bool, typer.Option("--tune", help="Choose the dense weight on qrels/train.tsv first.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """nDCG@10, recall@10/100 and MRR@10 of each retrieval mode on a BEIR dataset, with the production retriever.

    The corpus index is cached in the database, keyed by corpus hash and embedding model.

    Example: meshpilot eval retrieval --beir ../shared/external/beir/scifact --json
    """
    from evals.beir import load_beir
    from evals.retrieval_benchmark import run

    try:
        chosen = [Mode(m.strip()) for m in modes.split(",") if m.strip()]
    except ValueError as exc:
        raise UsageError(f"--modes takes dense, fulltext and hybrid: {exc}") from None
    if not beir.is_dir():
        raise UsageError(f"folder not found: {beir}")
    dataset = load_beir(beir)
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        with progress_bar(f"evaluating {dataset.name}", enabled=not json_out) as update:
            result = run(
                db,
                settings,
                get_embedder(settings),
                dataset,
                modes=chosen,
                split=split,
                limit_queries=limit_queries,
                tune=tune,
                progress=update,
            )
    finally:
        db.close()
    if json_out:
        print_json(result)
        return
    for mode, metrics in result["modes"].items():
        stdout.print(f"{mode:9} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    stdout.print(f"{result['queries']} queries, index {result['index_seconds']} s (cached: {result['index_cached']})")
