"""Sources: a data file (CSV, Parquet, JSON lines) or a SQL DDL file, checked and bound to a DuckDB relation.

Every column is read as text: typing is the profiler's job, where null markers such as `NA` must not
turn a numeric column into a string column.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from copilot.errors import BadSource

Format = Literal["csv", "parquet", "jsonl", "ddl"]
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".sql": "ddl",
    ".ddl": "ddl",
}


@dataclass(frozen=True)
class DdlColumn:
    name: str
    type: str
    not_null: bool
    primary_key: bool


@dataclass(frozen=True)
class Source:
    path: Path
    format: Format
    columns: list[str]
    """Column names exactly as the source spells them (BOM removed)."""
    delimiter: str = ","
    header: bool = True
    """False when the first line is data (names are then col_1, col_2, ...)."""
    ddl_columns: list[DdlColumn] = field(default_factory=list)
    ddl_table: str | None = None
    origin: dict[str, Any] | None = None
    """A PostgreSQL table this file is a snapshot of (host, port, database, schema, table)."""

    @property
    def has_data(self) -> bool:
        return self.format != "ddl"

    def relation_sql(self, path_text: str | None = None) -> str:
        """A DuckDB table expression over the source with every column as VARCHAR; `path_text` names the
        file relative to the product folder (resolved through DuckDB's file_search_path)."""
        path = sql_string(path_text or str(self.path))
        if self.format == "csv":
            cols = ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in self.columns)
            header, delim = str(self.header).lower(), sql_string(self.delimiter)
            return (
                f"read_csv({path}, header={header}, auto_detect=false, delim={delim}, "
                f"quote='\"', escape='\"', strict_mode=true, columns={{{cols}}})"
            )
        select = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in self.columns)
        reader = (
            f"read_parquet({path})" if self.format == "parquet" else f"read_json({path}, format='newline_delimited')"
        )
        return f"(SELECT {select} FROM {reader})"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_source(path: Path) -> Source:
    """Check the file and learn its columns; raises `BadSource` with one clear line."""
    path = Path(path)
    if not path.exists():
        raise BadSource(f"{path}: no such file")
    if not path.is_file():
        raise BadSource(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise BadSource(f"{path}: the file is empty")
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise BadSource(f"{path}: unknown format {path.suffix!r} (use .csv, .parquet, .jsonl or .sql)")
    if fmt == "csv":
        return _csv_source(path)
    if fmt == "ddl":
        return _ddl_source(path)
    return _columnar_source(path, fmt)


def _csv_source(path: Path) -> Source:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the end of the sample is not an encoding error.
        if exc.start < len(head) - 4:
            raise BadSource(f"{path}: not UTF-8 text (byte {exc.start}); re-save the file as UTF-8") from None
        text = head[: exc.start].decode("utf-8-sig")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise BadSource(f"{path}: the first line is empty; a header row is required")
    try:
        delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader(io.StringIO(lines[0]), delimiter=delimiter))
    if _first_line_is_data(header, text, delimiter):
        names = [f"col_{i}" for i in range(1, len(header) + 1)]
        return Source(path=path.resolve(), format="csv", columns=names, delimiter=delimiter, header=False)
    names = [h.strip() for h in header]
    if any(not n for n in names):
        raise BadSource(f"{path}: the header has an empty column name (column {names.index('') + 1})")
    if len(set(names)) != len(names):
        raise BadSource(f"{path}: the header repeats a column name")
    if len([ln for ln in lines[1:3] if ln.strip()]) == 0 and len(head) < (1 << 16):
        raise BadSource(f"{path}: the file has a header but no data rows")
    return Source(path=path.resolve(), format="csv", columns=header, delimiter=delimiter)


def _first_line_is_data(first: list[str], sample: str, delimiter: str) -> bool:
    """Header names are never numbers or ISO dates; when the first line holds one and the sniffer
    agrees that there is no header, the file starts with data."""
    looks_like_value = any(re.fullmatch(r"-?\d+(\.\d+)?|\d{4}-\d{2}-\d{2}.*", f.strip()) for f in first)
    if not looks_like_value:
        return False
    try:
        return not csv.Sniffer().has_header(sample[:8192])
    except csv.Error:
        return False


def _columnar_source(path: Path, fmt: Format) -> Source:
    reader = "read_parquet" if fmt == "parquet" else "read_json"
    extra = "" if fmt == "parquet" else ", format='newline_delimited'"
    try:
        with duckdb.connect() as con:
            described = con.sql(f"DESCRIBE SELECT * FROM {reader}({sql_string(str(path))}{extra})").fetchall()
    except duckdb.Error as exc:
        raise BadSource(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None
    if not described:
        raise BadSource(f"{path}: no columns")
    return Source(path=path.resolve(), format=fmt, columns=[str(row[0]) for row in described])


def _ddl_source(path: Path) -> Source:
    import sqlglot
    from sqlglot import exp

    try:
        text = path.read_text(encoding="utf-8-sig")
        statements = sqlglot.parse(text)
    except UnicodeDecodeError:
        raise BadSource(f"{path}: not UTF-8 text; re-save the file as UTF-8") from None
    except sqlglot.errors.ParseError as exc:
        raise BadSource(f"{path}: not valid SQL DDL: {str(exc).splitlines()[0]}") from None
    creates = [s for s in statements if isinstance(s, exp.Create) and s.kind == "TABLE"]
    if not creates:
        raise BadSource(f"{path}: no CREATE TABLE statement")
    create = creates[0]
    schema = create.this
    table = schema.this.name if isinstance(schema, exp.Schema) else create.this.name
    pk_names: set[str] = set()
    for constraint in schema.find_all(exp.PrimaryKey):
        pk_names |= {c.name for c in constraint.expressions}
    columns = []
    for col in schema.find_all(exp.ColumnDef):
        kinds = [c.args.get("kind") for c in col.constraints]
        not_null = any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null") for k in kinds)
        pk = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds) or col.name in pk_names
        kind = col.args.get("kind")
        columns.append(DdlColumn(col.name, kind.sql("duckdb") if kind else "VARCHAR", not_null or pk, pk))
    if not columns:
        raise BadSource(f"{path}: the CREATE TABLE has no columns")
    return Source(
        path=path.resolve(),
        format="ddl",
        columns=[c.name for c in columns],
        ddl_columns=columns,
        ddl_table=re.sub(r"\W", "_", table),
    )


_TABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$|^([A-Za-z_][A-Za-z0-9_]*)$")


def snapshot_postgres_table(url: str, table: str, folder: Path) -> Source:
    """Stream a PostgreSQL table into a CSV snapshot under `folder` (COPY, read-only) and open it.

    The snapshot is what DuckDB profiles and the generated tests run on; the origin goes into the
    contract's `source` server so the contract still names the table.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    match = _TABLE.match(table)
    if not match:
        raise BadSource(f"--table {table!r}: use schema.name (letters, digits, underscores)")
    schema, name = (match.group(1), match.group(2)) if match.group(2) else ("public", match.group(3))
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    target = folder / f"{schema}.{name}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT (FORMAT csv, HEADER)").format(
        sql.Identifier(schema), sql.Identifier(name)
    )
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.read_only = True
            with conn.cursor() as cur, target.open("wb") as out, cur.copy(query) as copy:
                for chunk in copy:
                    out.write(bytes(chunk))
            info = conninfo_to_dict(url)
    except psycopg.Error as exc:
        target.unlink(missing_ok=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadSource(f"cannot read {schema}.{name}: {first}") from None
    source = open_source(target)
    origin = {
        "type": "postgres",
        "host": str(info.get("host") or "localhost"),
        "port": int(info.get("port") or 5432),
        "database": str(info.get("dbname") or "postgres"),
        "schema": schema,
        "table": name,
    }
    return Source(**{**source.__dict__, "origin": origin})
