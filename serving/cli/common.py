"""What every command shares: settings, the database, JSON output, progress on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rag.database import Database, open_database
from rag.errors import UsageError
from rag.settings import Settings

stderr = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)


def settings_from(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    root = ctx.find_root()
    if root.obj is None:
        try:
            root.obj = Settings()
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise UsageError(f"invalid setting MESHPILOT_{field.upper()}: {first['msg']}") from None
    settings = root.obj
    assert isinstance(settings, Settings)
    return settings


def database(ctx: typer.Context) -> Database:
    return open_database(settings_from(ctx))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Any]:
    """Yields an update(done, total, label) callback drawing a bar on stderr."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[label]}", style="dim"),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None, label="")

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, label=label[-40:])

        yield update
