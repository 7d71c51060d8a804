"""The `meshpilot` command: root help reads as a quick start; errors print one line and exit 1 (2 for bad usage)."""

from __future__ import annotations

import logging
import os
import sys

import typer
from click import ClickException as ParseError  # typer < 0.20 (guardrails-ai's cap) parses with click

from rag.blas import use_one_blas_thread
from rag.errors import MeshpilotError, UsageError
from serving.cli import bench, copilot, db, demo, evals, guard, keys, knowledge, serve

app = typer.Typer(
    name="meshpilot",
    help=(
        "meshpilot: grounded answers from your data mesh's knowledge, offline by default.\n\n"
        "Quick start:\n\n"
        "  meshpilot demo                                   # sample knowledge base, sample questions\n\n"
        "  meshpilot ingest DIR --product NAME --classification public\n\n"
        '  meshpilot ask "QUESTION" --groups g1,g2 --json\n\n'
        "  meshpilot draft data.csv --name orders --domain sales --owner me@example.com --out dp/orders --approve\n\n"
        "  meshpilot keys create --name me --groups g1 && meshpilot serve   # HTTP API + web chat"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_debug = False


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    global _debug
    _debug = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr)


app.command()(demo.demo)
app.command()(knowledge.ingest)
app.command()(knowledge.products)
app.command()(knowledge.ask)
app.command()(serve.serve)
app.command()(copilot.draft)
app.command()(copilot.validate)
app.command()(copilot.propose)
app.command()(copilot.chat)
bench.app.command("draft")(copilot.bench_draft)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(evals.app, name="eval")
app.add_typer(guard.app, name="guard")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    use_one_blas_thread()
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode click returns a typer.Exit's code instead of exiting with it.
        code = command.main(args=argv, prog_name="meshpilot", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except MeshpilotError as exc:
        if _debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        if not isinstance(exc, UsageError):
            sys.stderr.write("(pass --debug for the traceback)\n")
        sys.exit(2 if isinstance(exc, UsageError) else 1)
    except ParseError as exc:  # bad usage found by the parser: it prints the usage line and says why
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
