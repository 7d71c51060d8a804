"""`meshpilot draft`, `validate`, `propose`, `chat` and `bench draft`: the data-product copilot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from copilot.errors import UsageError
from serving.cli.common import database, print_json, settings_from, stderr, stdout

if TYPE_CHECKING:  # the graph's imports (guardrails, langgraph, nltk) take seconds: only commands that run it pay
    from copilot.runs import DraftRun
    from copilot.state import InputState

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _standards_provider(ctx: typer.Context, db: Any) -> Any:
    def provide() -> Any:
        from copilot.standards import ensure_standards_product, retrieve_standards
        from rag.embeddings import get_embedder

        settings = settings_from(ctx)
        embedder = get_embedder(settings)
        ensure_standards_product(db, settings, embedder)
        return retrieve_standards(db, settings, embedder)

    return provide


def _print_run(run: DraftRun, json_out: bool) -> None:
    if json_out:
        print_json(run.to_dict())
    else:
        for check in run.checks:
            if not check["passed"]:
                stdout.print(f"[red]FAIL[/red] {check['name']}: {check['reason']}", markup=True, highlight=False)
        passed = sum(c["passed"] for c in run.checks)
        stdout.print(
            f"{passed}/{len(run.checks)} checks passed, {run.revisions} revision(s). {run.message}", highlight=False
        )
        for artifact in run.artifacts:
            stdout.print(f"  {artifact}", highlight=False)


def draft(
    ctx: typer.Context,
    data: Annotated[
        str | None, typer.Argument(metavar="DATA", help="CSV, Parquet, JSON-lines or SQL DDL file.", show_default=False)
    ] = None,
    name: Annotated[str | None, typer.Option(help="Product name, snake_case, e.g. customer_orders.")] = None,
    domain: Annotated[str | None, typer.Option(help="Owning domain, e.g. sales.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner e-mail.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder to publish the product into (written only when valid).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="A PostgreSQL URL to draft from a table instead of DATA.")
    ] = None,
    table: Annotated[str | None, typer.Option(help="With --source: the table, schema.name.")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve publication without asking.")] = False,
    thread: Annotated[str | None, typer.Option(help="Resume this draft thread (e.g. one awaiting approval).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Draft a validated data product (contract, pipeline, tests, card) from data; exit 0 only when valid.

    Example: meshpilot draft orders.csv --name orders --domain sales --owner ana@example.com --out dp/orders --approve
    """
    from copilot import runs
    from copilot.checkpoints import postgres_checkpointer
    from copilot.sources import open_source
    from rag.chat_models import chat_model_from_settings

    settings = settings_from(ctx)
    origin = None
    if source is not None:
        from copilot.sources import snapshot_postgres_table

        if data is not None or not table:
            raise UsageError("--source needs --table schema.name and no DATA argument")
        if not name or not domain:
            raise UsageError("missing --name or --domain")
        snapshot = snapshot_postgres_table(source, table, settings.home / "snapshots" / f"{domain}_{name}")
        data, origin = str(snapshot.path), snapshot.origin
    if thread is None:
        missing = [
            flag
            for flag, v in (("DATA", data), ("--name", name), ("--domain", domain), ("--owner", owner), ("--out", out))
            if not v
        ]
        if missing:
            raise UsageError(f"missing {', '.join(missing)} (or pass --thread ID to resume a draft)")
        assert data and name and domain and owner and out
        from copilot.publishing import check_out_dir
        from copilot.requests import DraftRequest

        DraftRequest(data, name, domain, owner)
        check_out_dir(out.resolve())
        open_source(Path(data))  # bad input fails here, in one line, before any database work
    from copilot.state import Context

    db = database(ctx)
    context = Context(standards=_standards_provider(ctx, db), chat_model=chat_model_from_settings(settings))
    try:
        with postgres_checkpointer(db) as saver:
            if thread is not None:
                run = runs.resume(thread, approve or _ask(), context, saver)
            else:
                assert data and name and domain and owner and out
                inputs: InputState = {
                    "data": str(Path(data).resolve()),
                    "name": name,
                    "domain": domain,
                    "owner": owner,
                    "out": str(out.resolve()),
                    "auto_approve": approve,
                }
                if origin:
                    inputs["origin"] = origin
                run = runs.start(inputs, context, saver)
                if run.status == "awaiting_approval" and sys.stdin.isatty():
                    run = runs.resume(run.thread, _ask(), context, saver)
    finally:
        db.close()
    _print_run(run, json_out)
    if not json_out and run.status == "awaiting_approval":
        stderr.print(run.message, highlight=False)
    if not run.valid or run.status in ("invalid", "rejected"):
        raise typer.Exit(1)


def _ask() -> bool:
    if not sys.stdin.isatty():
        return False
    return typer.confirm("Publish this valid draft?", default=False, err=True)


def validate(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A data-product folder (datacontract.odcs.yaml ...).")],
    json_out: JsonOpt = False,
) -> None:
    """Run the mandatory validation on a data-product folder; exit 1 on any failed check.

    Example: meshpilot validate products/orders --json
    """
    from copilot.validation import validate_folder

    if not folder.is_dir():
        raise UsageError(f"folder not found: {folder}")
    report = validate_folder(folder)
    if json_out:
        print_json({"valid": report.valid, "checks": report.summary()})
    else:
        for check in report.checks:
            mark = "[green]ok[/green]  " if check.passed else "[red]FAIL[/red]"
            stdout.print(f"{mark} {check.name}: {check.reason}", markup=True, highlight=False)
        stdout.print(f"{'valid' if report.valid else 'INVALID'}: {len(report.failures)} failed of {len(report.checks)}")
    if not report.valid:
        raise typer.Exit(1)


def propose(
    repo: Annotated[Path, typer.Option(help="The git repository.")] = Path("."),
    base: Annotated[str, typer.Option(help="Base ref, e.g. origin/main.")] = "HEAD~1",
    head: Annotated[str, typer.Option(help="Head ref, e.g. HEAD.")] = "HEAD",
    comment: Annotated[Path | None, typer.Option(help="Write the pull-request comment (Markdown) here.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Draft or update contracts for data, DDL and contracts changed between two refs; flag breaking changes.

    Exit 1 on a breaking change without a major version bump.

    Example: meshpilot propose --repo . --base origin/main --head HEAD --comment pr-comment.md
    """
    from copilot.proposals import propose_changes

    proposal = propose_changes(repo, base, head)
    if comment is not None:
        comment.write_text(proposal.comment, encoding="utf-8")
    if json_out:
        print_json(proposal.to_dict())
    else:
        stdout.print(proposal.comment, highlight=False, markup=False)
    if proposal.blocking:
        raise typer.Exit(1)


def chat(
    ctx: typer.Context,
    thread: Annotated[str | None, typer.Option(help="Resume a draft thread awaiting approval.")] = None,
) -> None:
    """Chat with the copilot: `draft FILE NAME DOMAIN OWNER OUT`, `approve`, `validate DIR`, or a question.

    Questions are answered by the RAG service from the knowledge products you may read (public ones here).

    Example: meshpilot chat
    """
    from copilot import runs
    from copilot.checkpoints import postgres_checkpointer
    from copilot.state import Context
    from copilot.validation import validate_folder
    from rag.service import RagService

    settings = settings_from(ctx)
    db = database(ctx)
    context = Context(standards=_standards_provider(ctx, db))
    current = thread
    stderr.print(
        "meshpilot copilot. Commands: draft FILE NAME DOMAIN OWNER OUT | approve | reject | validate DIR | quit"
    )
    try:
        with postgres_checkpointer(db) as saver:
            for line in sys.stdin:
                words = line.strip().split()
                if not words:
                    continue
                verb = words[0].lower()
                if verb in ("quit", "exit"):
                    break
                if verb == "draft" and len(words) == 6:
                    inputs: InputState = {
                        "data": str(Path(words[1]).resolve()),
                        "name": words[2],
                        "domain": words[3],
                        "owner": words[4],
                        "out": str(Path(words[5]).resolve()),
                        "auto_approve": False,
                    }
                    run = runs.start(inputs, context, saver)
                    current = run.thread
                    stdout.print(f"[{run.thread}] {run.status}: {run.message}", highlight=False, markup=False)
                elif verb in ("approve", "reject") and current:
                    run = runs.resume(current, verb == "approve", context, saver)
                    stdout.print(f"[{run.thread}] {run.status}: {run.message}", highlight=False, markup=False)
                elif verb == "validate" and len(words) == 2:
                    report = validate_folder(Path(words[1]))
                    stdout.print(
                        f"{'valid' if report.valid else 'invalid'}: " + "; ".join(report.feedback()), highlight=False
                    )
                else:
                    answer = RagService.build(settings, db).ask(line.strip(), groups=[])
                    stdout.print(answer.answer, highlight=False)
                    for c in answer.citations:
                        stdout.print(f"  [{c.n}] {c.product}: {c.source}", highlight=False)
    finally:
        db.close()


def bench_draft(
    rows: Annotated[int, typer.Option(help="Rows of the generated CSV.")] = 100_000,
    columns: Annotated[int, typer.Option(help="Columns of the generated CSV.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Draft and validate a generated CSV (default 100,000 rows x 20 columns); breakdown by stage.

    Example: meshpilot bench draft --json
    """
    from copilot.benchmarks import bench_draft as run_bench

    result = run_bench(rows, columns)
    if json_out:
        print_json(result)
    else:
        for stage, ms in result["stages_ms"].items():
            stdout.print(f"{stage:>20}: {ms:9.1f} ms", highlight=False)
        stdout.print(f"total {result['total_s']:.2f} s (goal <= {result['goal_s']} s): valid={result['valid']}")
