"""`meshpilot keys create|list|revoke`: API keys for the HTTP service (only their hashes are stored)."""

from __future__ import annotations

from typing import Annotated

import typer

from serving.api.keys import create_key, list_keys, revoke_key
from serving.cli.common import database, print_json, stderr, stdout

app = typer.Typer(help="API keys for `meshpilot serve` (shown once, stored as hashes).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Option("--name", "-n", help="A name to recognise the key by (unique among active keys).")
    ],
    groups: Annotated[str, typer.Option("--groups", "-g", help="Comma-separated groups: what the key may read.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="May create products and ingest.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a key and print it once: only its SHA-256 is stored, so it cannot be shown again.

    Example: meshpilot keys create --name alice --groups sales,sre --json
    """
    db = database(ctx)
    try:
        with db.transaction() as conn:
            created = create_key(conn, name, groups, admin=admin)
    finally:
        db.close()
    if json_out:
        print_json(created.to_dict())
        return
    stdout.print(created.key, markup=False, highlight=False)
    role = "admin, " if admin else ""
    stderr.print(
        f"key {name!r} ({role}groups: {', '.join(created.groups) or 'none'}): store it now, it is not shown again"
    )


@app.command("list")
def list_cmd(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List keys (names, prefixes, groups; never the keys).

    Example: meshpilot keys list --json
    """
    db = database(ctx)
    try:
        with db.engine.connect() as conn:
            keys = list_keys(conn)
    finally:
        db.close()
    if json_out:
        print_json({"keys": [k.to_dict() for k in keys]})
        return
    if not keys:
        stdout.print("no API keys yet: `meshpilot keys create --name NAME --groups g1,g2` makes one")
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        used = f"last used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        stdout.print(
            f"[bold]{k.name}[/] {k.prefix}… groups={','.join(k.groups) or '-'}{' admin' if k.admin else ''} "
            f"({state}, {used})"
        )


@app.command()
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name (or its listed prefix).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a key: requests with it get 401 from now on.

    Example: meshpilot keys revoke alice
    """
    db = database(ctx)
    try:
        with db.transaction() as conn:
            key_id = revoke_key(conn, name)
    finally:
        db.close()
    if json_out:
        print_json({"revoked": name, "id": key_id})
    else:
        stdout.print(f"key {name!r} revoked")
