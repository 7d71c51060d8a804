"""Checkpoints: LangGraph's PostgreSQL checkpointer on meshpilot's database, so a thread survives restarts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from langgraph.checkpoint.postgres import PostgresSaver

from rag.database import Database


def conninfo(db: Database) -> str:
    """The libpq URL of the database (psycopg, not SQLAlchemy's dialect name)."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_checkpointer(db: Database) -> Iterator[PostgresSaver]:
    with PostgresSaver.from_conn_string(conninfo(db)) as saver:
        saver.setup()  # idempotent: creates or migrates LangGraph's own tables
        yield saver
