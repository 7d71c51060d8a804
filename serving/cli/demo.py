"""`meshpilot demo`: the embedded stack end to end on the bundled sample knowledge base."""

from __future__ import annotations

import typer

from rag.embeddings import get_embedder
from rag.ingestion import ingest_directory
from rag.products import spec_from_manifest
from rag.samples import product_dirs
from rag.service import RagService
from serving.cli.common import database, progress_bar, settings_from, stdout
from serving.cli.knowledge import print_answer, print_report

# (question, caller's groups): public knowledge, an internal runbook, and a restricted product asked
# first by a caller outside its group (who must get "I don't know") and then by one inside it.
DEMO_QUESTIONS: list[tuple[str, list[str]]] = [
    ("How often do batch data products need to be refreshed?", []),
    ("How fast does on-call have to acknowledge a SEV1?", ["sre"]),
    ("What is the code name of the FY2027 revenue forecast model?", ["sales"]),
    ("What is the code name of the FY2027 revenue forecast model?", ["finance"]),
]


def demo(ctx: typer.Context) -> None:
    """Start the database, ingest the sample knowledge base, and answer sample questions with citations.

    Example: meshpilot demo
    """
    settings = settings_from(ctx)
    db = database(ctx)
    stdout.print(f"[bold]database[/]: {db.url_masked}{' (embedded)' if db.embedded else ''}")
    try:
        embedder = get_embedder(settings)
        for product_dir in product_dirs():
            spec = spec_from_manifest(product_dir)
            with progress_bar(f"ingesting {spec.name}") as update:
                report = ingest_directory(db, settings, spec, product_dir, embedder=embedder, progress=update)
            print_report(report)
        service = RagService.build(settings, db, embedder=embedder)
        for question, groups in DEMO_QUESTIONS:
            stdout.print(f"\n[bold]Q[/] ({'groups: ' + ', '.join(groups) if groups else 'public caller'}): {question}")
            print_answer(service.ask(question, groups=groups))
    finally:
        db.close()
    stdout.print('\nTry: meshpilot ask "What classification do customer emails need?" --groups sales')
