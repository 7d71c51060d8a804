from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import text

from rag import database
from rag.database import Database, mask_url, open_database
from rag.errors import DatabaseUnavailable
from rag.migrations import MIGRATIONS, migrate
from rag.settings import Settings


def test_embedded_server_has_postgres_18_and_pgvector(db: Any) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("SHOW server_version_num")).scalar_one().startswith("18")
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
        assert tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)
        assert conn.execute(text("SHOW hnsw.ef_search")).scalar_one() == str(Settings().ef_search)
    assert (db.embedded and "***" in db.url_masked) or "@" not in db.url_masked


def test_migrations_are_recorded_and_idempotent(db: Any) -> None:
    with db.transaction() as conn:
        assert migrate(conn) == []
        versions = conn.execute(text("SELECT version FROM schema_migrations ORDER BY version")).scalars().all()
    assert versions == [m[0] for m in MIGRATIONS]


def test_embeddings_are_stored_in_their_rows(db: Any, samples: Any) -> None:
    """Not in the TOAST table, where the dense side paid an index lookup a candidate to read them."""
    with db.engine.connect() as conn:
        wide, out_of_line = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE octet_length(text) + pg_column_size(tsv) + pg_column_size(embedding)"
                "  > 2032),"  # rows the toaster shrinks (TOAST_TUPLE_THRESHOLD)
                " count(*) FILTER (WHERE pg_column_toast_chunk_id(embedding) IS NOT NULL) FROM chunks"
            )
        ).one()
    assert wide > 0 and out_of_line == 0


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("postgresql://meshpilot:s3cret-pw@db.example:5432/mesh")
    assert "s3cret-pw" not in masked and "***" in masked and "db.example" in masked


def test_unreachable_database_names_the_url_with_the_password_masked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=SecretStr("postgresql://u:hunter2@127.0.0.1:1/mesh"))
    with pytest.raises(DatabaseUnavailable) as info:
        open_database(settings)
    message = str(info.value)
    assert "127.0.0.1:1" in message and "***" in message and "hunter2" not in message


def test_a_non_postgres_url_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=SecretStr("mysql://u:pw@localhost/x"))
    with pytest.raises(DatabaseUnavailable, match="postgresql://"):
        open_database(settings)


def test_the_same_code_works_through_a_database_url(settings: Settings, db: Any, samples: Any) -> None:
    """MESHPILOT_DATABASE_URL pointing at the (already running) server: same schema, same data."""
    raw = db.engine.url.render_as_string(hide_password=False)
    external = Settings(home=settings.home, database_url=SecretStr(raw.replace("+psycopg", "")))
    other = open_database(external)
    try:
        assert not other.embedded
        with other.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM knowledge_products")).scalar_one() >= 4
    finally:
        other.close()


@pytest.fixture
def pool(settings: Settings, db: Any) -> Iterator[Database]:
    """A second pool on the test server with one connection, so each checkout reuses the same session."""
    raw = db.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    one = settings.model_copy(update={"database_url": SecretStr(raw), "db_pool_size": 1, "db_pool_overflow": 0})
    opened = open_database(one, migrate_schema=False)
    yield opened
    opened.close()


def _backend_pid(database: Database) -> int:
    with database.autocommit() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _session_closed_by_the_server(db: Any, pool: Database) -> int:
    """Terminate the server session behind the pool's idle connection; its pid."""
    pid = _backend_pid(pool)
    with db.autocommit() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar_one()
    return pid


def test_an_idle_connection_the_server_closed_is_replaced_before_use(
    db: Any, pool: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _session_closed_by_the_server(db, pool)
    monkeypatch.setattr(database, "IDLE_PING_S", 0.0)  # as if it had been idle for a while
    assert _backend_pid(pool) != closed  # pinged, found closed, replaced: no error reaches the caller


def test_a_busy_pool_learns_of_a_closed_session_from_the_statement_that_fails(
    db: Any, pool: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections in steady use are not pinged: one statement fails, and the pool is renewed at once."""
    closed = _session_closed_by_the_server(db, pool)
    monkeypatch.setattr(database, "IDLE_PING_S", 3600.0)
    with pytest.raises(sa.exc.OperationalError):
        _backend_pid(pool)
    assert _backend_pid(pool) != closed


def _driver_backend_pid(database: Database) -> int:
    with database.driver_autocommit("backend pid") as conn:
        return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def test_the_driver_path_renews_the_pool_after_a_lost_session(
    db: Any, pool: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retrieval statement's path (psycopg's own connection) fails and recovers like SQLAlchemy's."""
    closed = _session_closed_by_the_server(db, pool)
    monkeypatch.setattr(database, "IDLE_PING_S", 3600.0)
    with pytest.raises(sa.exc.OperationalError, match="backend pid"):
        _driver_backend_pid(pool)
    assert _driver_backend_pid(pool) != closed


def test_the_driver_path_hands_back_a_connection_sqlalchemy_can_use(pool: Database) -> None:
    """Autocommit is the driver path's own: the next SQLAlchemy user of the connection gets transactions."""
    pid = _driver_backend_pid(pool)
    with pytest.raises(sa.exc.ProgrammingError), pool.driver_autocommit("a typo") as conn:
        conn.execute("SELEC 1")
    with pool.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # the same session, kept
        conn.execute(text("CREATE TEMP TABLE rolled_back (x int)"))
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('pg_temp.rolled_back')")).scalar_one() is None
