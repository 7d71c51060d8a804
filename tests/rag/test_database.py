from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from rag.database import mask_url, open_database
from rag.errors import DatabaseUnavailable
from rag.migrations import MIGRATIONS, migrate
from rag.settings import Settings


def test_embedded_server_has_postgres_18_and_pgvector(db: Any) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("SHOW server_version_num")).scalar_one().startswith("18")
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
        assert tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)
        assert conn.execute(text("SHOW hnsw.ef_search")).scalar_one() == "100"
    assert (db.embedded and "***" in db.url_masked) or "@" not in db.url_masked


def test_migrations_are_recorded_and_idempotent(db: Any) -> None:
    with db.transaction() as conn:
        assert migrate(conn) == []
        versions = conn.execute(text("SELECT version FROM schema_migrations ORDER BY version")).scalars().all()
    assert versions == [m[0] for m in MIGRATIONS]


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
