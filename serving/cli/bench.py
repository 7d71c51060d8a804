"""`meshpilot bench ...`: benchmarks that print JSON (never timed unit tests)."""

from __future__ import annotations

from typing import Annotated

import typer

from serving.cli.common import database, print_json, settings_from, stdout

app = typer.Typer(help="Benchmarks (JSON on stdout).", no_args_is_help=True)


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    copies: Annotated[int, typer.Option(min=1, max=200, help="Copies of the sample knowledge base to ingest.")] = 5,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Encoder processes (default: one per core).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Whole ingestion pipeline vs the raw encoder on the same chunks, in one run; prints both and their ratio.

    Example: meshpilot bench ingest --json
    """
    from evals.benchmarks.ingest import run

    settings = settings_from(ctx)
    db = database(ctx)
    try:
        result = run(db, settings, copies=copies, workers=workers)
    finally:
        db.close()
    if json_out:
        print_json(result)
    else:
        stdout.print(
            f"{result['chunks']} chunks: pipeline {result['pipeline']['chunks_per_s']}/s, raw encoder "
            f"{result['raw_encoder']['chunks_per_s']}/s, ratio {result['ratio']} (goal >= {result['goal_ratio']})"
        )
