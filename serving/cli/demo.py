"""`meshpilot demo`: the embedded stack end to end on the bundled sample knowledge base."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from rag.database import Database
from rag.embeddings import get_embedder
from rag.errors import NotFound
from rag.ingestion import ingest_directory
from rag.products import spec_from_manifest
from rag.samples import product_dirs
from serving.api.keys import CreatedKey, create_key, revoke_key
from serving.cli.common import database, progress_bar, settings_from, stdout
from serving.cli.knowledge import print_answer, print_report
from serving.cli.serve import run_server

# (question, caller's groups): public knowledge, an internal runbook, and a restricted product asked
# first by a caller outside its group (who must get "I don't know") and then by one inside it.
DEMO_QUESTIONS: list[tuple[str, list[str]]] = [
    ("How often do batch data products need to be refreshed?", []),
    ("How fast does on-call have to acknowledge a SEV1?", ["sre"]),
    ("What is the code name of the FY2027 revenue forecast model?", ["sales"]),
    ("What is the code name of the FY2027 revenue forecast model?", ["finance"]),
]


# The web page's key: admin, and readers of everything but the restricted finance product, so the
# FY2027 question shows the permission filter at work in the browser too.
DEMO_KEY_NAME = "demo"
DEMO_KEY_GROUPS = ["sre", "sales", "data-platform"]


def demo(
    ctx: typer.Context,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API and web chat after the sample questions.")
    ] = True,
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on; 0 picks a free one.")] = 8000,
) -> None:
    """Start the database, ingest the sample knowledge base, answer sample questions with citations,
    then serve the API and the web chat page (with a fresh demo key) until Ctrl-C.

    Example: meshpilot demo --no-serve
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
        from rag.service import RagService

        service = RagService.build(settings, db, embedder=embedder)
        for question, groups in DEMO_QUESTIONS:
            stdout.print(f"\n[bold]Q[/] ({'groups: ' + ', '.join(groups) if groups else 'public caller'}): {question}")
            print_answer(service.ask(question, groups=groups))
        key = _demo_key(db) if serve else None
    finally:
        db.close()
    stdout.print('\nTry: meshpilot ask "What classification do customer emails need?" --groups sales')
    if key is None:
        return
    stdout.print(
        f"\n[bold]demo API key[/] (admin; groups {', '.join(key.groups)}; a new one each run, the previous one "
        f"is revoked): {key.key}"
    )

    def announce(url: str) -> None:
        stdout.print(f"[bold]web chat[/]: {url}/  (paste the key)   API docs: {url}/docs   Ctrl-C stops")
        stdout.file.flush()

    run_server(settings, host=host, port=port, announce=announce)


def _demo_key(db: Database) -> CreatedKey:
    """A fresh demo key; printing it is the point, so it is rotated on every run."""
    with db.transaction() as conn:
        with contextlib.suppress(NotFound):
            revoke_key(conn, DEMO_KEY_NAME, actor="demo")
        return create_key(conn, DEMO_KEY_NAME, DEMO_KEY_GROUPS, admin=True, actor="demo")
