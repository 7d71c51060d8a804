"""SQL guard. Threat model: generated SQL (ours, a model's, or a hand-edited product folder) runs on the
reviewer's machine with DuckDB, which can write files, install extensions and change settings; one
destructive or exfiltrating statement must never run. Only single SELECT queries over known relations
and the file readers pass.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from copilot.reports import Check

# Table functions a query may call: the readers the manifest binds sources with.
ALLOWED_TABLE_FUNCTIONS = {"read_csv", "read_parquet", "read_json", "read_csv_auto", "read_json_auto"}
# Scalar functions that reach outside the query (files, network, settings) are refused.
FORBIDDEN_FUNCTIONS = {
    "read_text", "read_blob", "glob", "getenv", "current_setting", "system", "shell", "load_extension",
    "pg_read_file", "pg_ls_dir", "lo_import", "lo_export", "dblink", "copy",
}  # fmt: skip
_WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge, exp.Copy,
    exp.Command, exp.Set, exp.Pragma, exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.TruncateTable,
    exp.Grant, exp.Attach, exp.Detach, exp.Install, exp.LoadData,
)  # fmt: skip


def check_read_only(sql: str, name: str = "sql_read_only") -> Check:
    """Parse `sql` (DuckDB dialect); pass only when every statement is a plain read."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        return Check(name, False, f"does not parse: {str(exc).splitlines()[0]}")
    if not statements:
        return Check(name, False, "no SQL statement")
    for statement in statements:
        if not isinstance(statement, exp.Query):
            return Check(name, False, f"not a read-only query: {statement.key.upper()} is not allowed")
        for node in statement.walk():
            if isinstance(node, _WRITES):
                return Check(name, False, f"not read-only: contains {node.key.upper()}")
            if isinstance(node, exp.Anonymous | exp.Func):
                fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
                if fname in FORBIDDEN_FUNCTIONS:
                    return Check(name, False, f"calls {fname}(), which reaches outside the query")
                if isinstance(node.parent, exp.Table) and fname not in ALLOWED_TABLE_FUNCTIONS:
                    return Check(name, False, f"table function {fname}() is not on the allowlist")
    return Check(name, True, f"{len(statements)} read-only statement(s)")
