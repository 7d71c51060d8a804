"""Quality tests: the contract's quality rules as SQL checks, and a pytest file that runs them on the data.

Each check is one read-only query returning the number of violations; 0 passes. The pytest file
needs only duckdb and doubles as a script, which is how the validation runs it (a subprocess with a
time limit).
"""

from __future__ import annotations

from typing import Any

CHECKS_FILE = "tests/checks.sql"


def _literal(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def rule_sql(table: str, column: str | None, rule: dict[str, Any]) -> str | None:
    """The violation-count query of one ODCS quality rule; None for a rule we cannot execute."""
    if rule.get("type") == "sql":
        query = str(rule["query"]).strip().rstrip(";")
        if "mustBe" in rule:
            return f"SELECT CASE WHEN ({query}) = {rule['mustBe']} THEN 0 ELSE 1 END"
        return None
    metric = rule.get("metric")
    if metric == "rowCount":
        return f"SELECT CASE WHEN COUNT(*) > {rule.get('mustBeGreaterThan', 0)} THEN 0 ELSE 1 END FROM {table}"
    if column is None:
        return None
    if metric == "nullValues":
        if rule.get("unit") == "percent":
            limit = rule["mustBeLessOrEqualTo"]
            return (
                f"SELECT CASE WHEN 100.0 * count_if({column} IS NULL) / greatest(COUNT(*), 1) <= {limit} "
                f"THEN 0 ELSE 1 END FROM {table}"
            )
        return f"SELECT COUNT(*) FROM {table} WHERE {column} IS NULL"
    if metric == "duplicateValues":
        return f"SELECT COUNT({column}) - COUNT(DISTINCT {column}) FROM {table}"
    if metric == "invalidValues":
        valid = ", ".join(_literal(v) for v in rule["arguments"]["validValues"])
        return f"SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND {column} NOT IN ({valid})"
    if metric == "missingValues":
        missing = ", ".join(_literal(v) for v in rule["arguments"]["missingValues"])
        return f"SELECT COUNT(*) FROM {table} WHERE {column} IS NULL OR CAST({column} AS VARCHAR) IN ({missing})"
    return None


def contract_checks(contract: dict[str, Any]) -> list[tuple[str, str]]:
    """(check name, query) for every executable rule of every table in the contract."""
    checks: list[tuple[str, str]] = []
    for obj in contract.get("schema") or []:
        table = obj["name"]
        for i, rule in enumerate(obj.get("quality") or []):
            if sql := rule_sql(table, None, rule):
                checks.append((f"{table}__{rule.get('metric', 'sql')}_{i}", sql))
        for prop in obj.get("properties") or []:
            for i, rule in enumerate(prop.get("quality") or []):
                if sql := rule_sql(table, prop["name"], rule):
                    checks.append((f"{prop['name']}__{rule.get('metric', 'sql')}_{i}", sql))
    return checks


def checks_sql(checks: list[tuple[str, str]]) -> str:
    parts = ["-- Quality checks: each query returns the number of violations; 0 passes. Read-only.\n"]
    for name, sql in checks:
        parts.append(f"-- check: {name}\n{sql};\n")
    return "\n".join(parts)


_TEST_FILE = '''"""Quality tests of {product}: run with pytest, or as a script (exit 1 on a failed check)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
RAW = {relation!r}
MODEL = HERE.parent / "pipeline" / {model_file!r}
TABLE = {table!r}


def load_checks() -> list[tuple[str, str]]:
    text = (HERE / "checks.sql").read_text(encoding="utf-8")
    found = re.findall(r"^-- check: (\\S+)\\n(.*?);$", text, flags=re.M | re.S)
    return [(name, sql.strip()) for name, sql in found]


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Relative input paths are relative to the product folder.
    search = os.environ.get("MESHPILOT_PRODUCT_DIR", str(HERE.parent)).replace("'", "''")
    con.execute(f"SET file_search_path = '{{search}}'")
    con.execute(f"CREATE VIEW raw AS SELECT * FROM {{RAW}}")
    con.execute(f"CREATE TABLE {{TABLE}} AS " + MODEL.read_text(encoding="utf-8"))
    return con


def failures() -> list[str]:
    con = connect()
    bad = []
    for name, sql in load_checks():
        violations = con.execute(sql).fetchall()[0][0]
        if violations:
            bad.append(f"{{name}}: {{violations}} violation(s)")
    return bad


def test_every_quality_check_passes() -> None:
    assert load_checks(), "no checks found in checks.sql"
    assert failures() == []


if __name__ == "__main__":
    problems = failures()
    print("\\n".join(problems) or f"{{len(load_checks())}} checks passed")
    sys.exit(1 if problems else 0)
'''


def test_file_name(table: str) -> str:
    return f"tests/test_{table}.py"


def draft_test_file(product: str, table: str, relation: str, model_file: str) -> str:
    return _TEST_FILE.format(product=product, table=table, relation=relation, model_file=model_file)
