"""`meshpilot ingest`, `products` and `ask`: knowledge products and grounded answers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rag.documents import MANIFEST
from rag.errors import UsageError
from rag.ingestion import IngestReport, ingest_directory
from rag.products import CLASSIFICATIONS, ProductSpec, list_products, merge_specs, parse_groups, spec_from_manifest
from serving.cli.common import database, print_json, progress_bar, settings_from, stderr, stdout

if TYPE_CHECKING:
    from rag.answers import GroundedAnswer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
GroupsOpt = Annotated[
    str | None, typer.Option("--groups", "-g", help="Comma-separated groups, e.g. finance,sre.", show_default=False)
]


def ingest(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of Markdown, text, HTML, PDF, YAML, JSON.")],
    product: Annotated[
        str | None,
        typer.Option("--product", "-p", help="Knowledge product name (created if new); default: DIR/product.yaml's."),
    ] = None,
    domain: Annotated[str | None, typer.Option(help="Owning domain, e.g. finance.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner (team or e-mail).")] = None,
    classification: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(CLASSIFICATIONS)} (new products: internal).")
    ] = None,
    groups: Annotated[str | None, typer.Option(help="Groups allowed to read a non-public product.")] = None,
    version: Annotated[str | None, typer.Option(help="Product version, e.g. 1.2.0.")] = None,
    description: Annotated[str | None, typer.Option(help="One-line description.")] = None,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Re-embed every document with the configured model.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Sync a folder into a knowledge product: add new, update changed, skip unchanged, delete vanished.

    Example: meshpilot ingest docs/standards --product mesh-standards --classification public
    """
    if not directory.is_dir():
        raise UsageError(f"folder not found: {directory}" if not directory.exists() else f"not a folder: {directory}")
    manifest = spec_from_manifest(directory) if (directory / MANIFEST).is_file() else None
    name = product or (manifest.name if manifest else None)
    if name is None:
        raise UsageError(f"--product is required (or a {MANIFEST} in {directory} naming the product)")
    spec = ProductSpec(
        name=name,
        domain=domain,
        owner=owner,
        classification=classification,
        groups=parse_groups(groups) if groups is not None else None,
        version=version,
        description=description,
    )
    if manifest is not None and manifest.name == spec.name:
        spec = merge_specs(spec, manifest)
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        with progress_bar(f"ingesting {spec.name}", enabled=not json_out) as update:
            report = ingest_directory(db, settings, spec, directory, reembed=reembed, progress=update)
    finally:
        db.close()
    if json_out:
        print_json(report.to_dict())
    else:
        print_report(report)
    for skipped in report.skipped:
        stderr.print(f"[yellow]skipped[/] {skipped.source}: {skipped.reason}")


def print_report(report: IngestReport) -> None:
    stdout.print(
        f"[bold]{report.product}[/]: {report.documents_added} added, {report.documents_updated} updated, "
        f"{report.documents_unchanged} unchanged, {report.documents_deleted} deleted, "
        f"{len(report.skipped)} skipped; {report.chunks} chunks ({report.embedding_model}) "
        f"in {report.seconds:.1f} s"
    )


def products(
    ctx: typer.Context,
    groups: GroupsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List knowledge products (all of them, or those visible to --groups).

    Example: meshpilot products --json
    """
    db = database(ctx)
    try:
        with db.engine.connect() as conn:
            items = list_products(conn, parse_groups(groups) if groups is not None else None)
    finally:
        db.close()
    if json_out:
        print_json({"products": [p.public_dict() for p in items]})
        return
    if not items:
        stdout.print("no knowledge products yet: `meshpilot ingest DIR --product NAME` creates one")
    for p in items:
        visible = "everyone" if p.classification == "public" else (", ".join(p.groups) or "nobody (no groups)")
        stdout.print(
            f"[bold]{p.name}[/] v{p.version or '-'} [{p.classification}] domain={p.domain or '-'} "
            f"owner={p.owner or '-'} readers={visible}: {p.documents} documents, {p.chunks} chunks"
        )


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    groups: GroupsOpt = None,
    product: Annotated[str | None, typer.Option("--product", "-p", help="Only this product.")] = None,
    domain: Annotated[str | None, typer.Option(help="Only products of this domain.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer a question from the knowledge the caller's groups may read, with citations.

    Example: meshpilot ask "How often must batch products be refreshed?" --groups sre
    """
    if not question.strip():
        raise UsageError("the question is empty")
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        from rag.service import RagService  # its guards import guardrails-ai: seconds, only when asking

        result = RagService.build(settings, db).ask(
            question, groups=parse_groups(groups), product=product, domain=domain
        )
    finally:
        db.close()
    if json_out:
        print_json(result.to_dict())
    else:
        print_answer(result)


def print_answer(result: GroundedAnswer) -> None:
    stdout.print(result.answer, markup=False, highlight=False)
    for c in result.citations:
        stdout.print(f"  [{c.n}] {c.product}/{c.source} — “{c.quote}”", markup=False, highlight=False)
