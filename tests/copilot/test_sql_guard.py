"""Security tests of the SQL guard: only single reads pass; writes, settings, files and the shell do not."""

from __future__ import annotations

import pytest

from copilot.sql_guard import check_read_only

SAFE = [
    "SELECT 1",
    "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
    "SELECT * FROM read_csv('/data/x.csv', header=true, columns={'a': 'VARCHAR'})",
    "SELECT COUNT(*) FROM orders WHERE amount < 0",
]
UNSAFE = [
    "DROP TABLE orders",
    "SELECT 1; DELETE FROM orders",
    "INSERT INTO orders VALUES (1)",
    "UPDATE orders SET amount = 0",
    "COPY orders TO '/tmp/leak.csv'",
    "ATTACH 'other.db'",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CREATE TABLE x AS SELECT 1",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT getenv('HOME')",
    "SELECT * FROM glob('/home/*')",
    "SELECT * FROM query_table('orders')",
    "this is not sql at all (",
]


@pytest.mark.parametrize("sql", SAFE)
def test_reads_pass(sql: str) -> None:
    assert check_read_only(sql).passed


@pytest.mark.parametrize("sql", UNSAFE)
def test_everything_else_is_refused(sql: str) -> None:
    check = check_read_only(sql)
    assert not check.passed and check.reason
