"""`meshpilot db status|stop|migrate`: the database behind the knowledge store."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import text

from rag.database import embedded_running, mask_url, open_database, stop_embedded
from rag.migrations import MIGRATIONS
from serving.cli.common import print_json, settings_from, stdout

app = typer.Typer(help="Inspect, migrate or stop the database.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


@app.command()
def status(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Where the database is, whether it runs, and what it holds. Does not start a stopped embedded server.

    Example: meshpilot db status --json
    """
    settings = settings_from(ctx)
    embedded = settings.database_url is None
    info: dict[str, Any] = {
        "embedded": embedded,
        "url": None if embedded else mask_url(settings.database_url.get_secret_value()),  # type: ignore[union-attr]
        "data_dir": str(settings.data_dir) if embedded else None,
        "running": False,
        "server_version": None,
        "pgvector_version": None,
        "schema_version": None,
        "schema_latest": MIGRATIONS[-1][0],
        "products": None,
        "documents": None,
        "chunks": None,
        "database_bytes": None,
    }
    if not embedded or embedded_running(settings.data_dir):
        db = open_database(settings, migrate_schema=False)
        try:
            with db.engine.connect() as conn:
                info["url"] = db.url_masked
                info["running"] = True
                info["server_version"] = conn.execute(text("SHOW server_version")).scalar_one()
                info["pgvector_version"] = conn.execute(
                    text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                ).scalar()
                info["database_bytes"] = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
                if conn.execute(text("SELECT to_regclass('schema_migrations') IS NOT NULL")).scalar():
                    info["schema_version"] = conn.execute(text("SELECT max(version) FROM schema_migrations")).scalar()
                if conn.execute(text("SELECT to_regclass('knowledge_products') IS NOT NULL")).scalar():
                    row = conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM knowledge_products), (SELECT count(*) FROM documents),"
                            " (SELECT count(*) FROM chunks)"
                        )
                    ).one()
                    info["products"], info["documents"], info["chunks"] = (int(v) for v in row)
        finally:
            db.close()
    if json_out:
        print_json(info)
        return
    where = f"embedded, data in {info['data_dir']}" if embedded else info["url"]
    state = "running" if info["running"] else "stopped"
    stdout.print(f"database: {where} ({state})")
    if info["running"]:
        stdout.print(
            f"PostgreSQL {info['server_version']}, pgvector {info['pgvector_version']}, "
            f"schema {info['schema_version']}/{info['schema_latest']}; {info['products']} products, "
            f"{info['documents']} documents, {info['chunks']} chunks"
        )


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL server (its data stays on disk).

    Example: meshpilot db stop
    """
    settings = settings_from(ctx)
    if settings.database_url is not None:
        stdout.print("MESHPILOT_DATABASE_URL is set: that server is not meshpilot's to stop")
        return
    stopped = stop_embedded(settings.data_dir)
    stdout.print("embedded database stopped" if stopped else "embedded database was not running")


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply pending schema migrations (every command does this on start; this only reports it).

    Example: meshpilot db migrate
    """
    db = open_database(settings_from(ctx))
    try:
        with db.engine.connect() as conn:
            version = conn.execute(text("SELECT max(version) FROM schema_migrations")).scalar()
    finally:
        db.close()
    stdout.print(f"schema at version {version} ({db.url_masked})")
