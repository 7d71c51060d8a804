"""`meshpilot eval ...`: evaluation suites (more arrive with the evals issue)."""

from __future__ import annotations

from typing import Annotated

import typer

from evals.calibration import calibrate, features, load_golden
from rag.embeddings import get_embedder
from rag.retrieval import HybridRetriever
from rag.samples import ingest_samples
from serving.cli.common import database, print_json, settings_from, stdout

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
