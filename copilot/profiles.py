"""Profiles: what the data says about each column, computed by DuckDB in one streaming scan.

Values are read as text and null markers ('', NA, N/A, NULL, null, NaN) count as missing, so a numeric
column with `NA` holes is still numeric and nullable -- the mistake a naive CSV importer makes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import duckdb

from copilot.sources import Source, quote_ident

LogicalType = Literal["string", "integer", "number", "boolean", "date", "timestamp"]
NULL_MARKERS = ("", "NA", "N/A", "n/a", "NULL", "null", "NaN")
PERSONAL_NAME_HINTS = (
    "email", "phone", "mobile", "first_name", "last_name", "full_name", "surname", "address", "street",
    "postcode", "zip", "birth", "dob", "ssn", "passport", "iban", "card", "tax_id", "ip_address",
)  # fmt: skip
RESTRICTED_NAME_HINTS = ("iban", "card", "ssn", "passport", "tax_id", "bank_account")
CURRENCIES = (
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "INR",
    "JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "TRY", "USD", "ZAR",
)  # fmt: skip
_PATTERNS = {
    "integer": r"^[-+]?(0|[1-9][0-9]*)$",
    "number": r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$",
    "boolean": r"(?i)^(true|false)$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$",
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
    "phone": r"^\+?[0-9(][0-9 ().-]{5,18}[0-9]$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
LOW_CARDINALITY = 12


@dataclass
class ColumnProfile:
    source_name: str
    name: str
    """The published name (snake_case, suffixes from the naming standard)."""
    logical_type: LogicalType
    rows: int
    nulls: int
    distinct: int
    matches: dict[str, int]
    min_value: str | None
    max_value: str | None
    max_length: int
    values: list[str] | None = None
    """Every distinct value when the column is enumerated (few values, each repeated)."""
    patterns: list[str] = field(default_factory=list)
    personal: bool = False
    classification: str = "internal"
    mixed: bool = False
    declared_required: bool | None = None
    """From a DDL's NOT NULL / PRIMARY KEY, when there are no rows to look at."""
    declared_unique: bool | None = None

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def required(self) -> bool:
        if self.declared_required is not None:
            return self.declared_required
        return self.nulls == 0 and self.rows > 0

    @property
    def unique(self) -> bool:
        if self.declared_unique is not None:
            return self.declared_unique
        return self.required and self.distinct == self.rows


@dataclass
class Profile:
    source: str
    format: str
    rows: int
    columns: list[ColumnProfile]
    primary_key: list[str]
    """Published names of the chosen key (a single unique column, else a unique pair)."""
    origin: dict[str, Any] | None = None
    """Where a snapshot came from (a PostgreSQL table): host, port, database, schema, table."""

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        columns = [ColumnProfile(**c) for c in data["columns"]]
        return cls(**{**data, "columns": columns})


def snake_case(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    name = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    name = re.sub(r"_+", "_", name) or "column"
    return name if name[0].isalpha() else f"col_{name}"


def published_name(source_name: str, logical_type: LogicalType) -> str:
    """snake_case plus the suffix/prefix the naming standard makes mandatory for the type."""
    name = snake_case(source_name)
    if logical_type == "date" and not name.endswith("_date"):
        name = f"{name.removesuffix('_at').removesuffix('_on')}_date"
    elif logical_type == "timestamp" and not name.endswith("_at"):
        name = f"{name.removesuffix('_date').removesuffix('_time').removesuffix('_ts')}_at"
    elif logical_type == "boolean" and not name.startswith(("is_", "has_")):
        name = f"is_{name}"
    return name


def clean_expr(column: str) -> str:
    """The column's text with null markers as NULL."""
    markers = ", ".join("'" + m + "'" for m in NULL_MARKERS)
    return f"CASE WHEN trim({quote_ident(column)}) IN ({markers}) THEN NULL ELSE trim({quote_ident(column)}) END"


def profile_source(source: Source, con: duckdb.DuckDBPyConnection | None = None) -> Profile:
    """Profile a data file in one aggregate scan (plus one small scan for enumerated columns)."""
    if not source.has_data:
        return _profile_ddl(source)
    own = con is None
    con = con or duckdb.connect()
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM {source.relation_sql()}")
        parts = ["count(*)"]
        for i in range(len(source.columns)):
            x = f"c{i}"
            parts += [
                f"count({x})",
                f"count(DISTINCT {x})",
                f"min({x})",
                f"max({x})",
                f"coalesce(max(length({x})), 0)",
                *(f"count_if(regexp_full_match({x}, '{p}'))" for p in _PATTERNS.values()),
                f"count_if({x} IN ({', '.join(repr(c) for c in CURRENCIES)}))",
                f"min(TRY_CAST({x} AS DOUBLE))",
                f"max(TRY_CAST({x} AS DOUBLE))",
            ]
        cleaned = ", ".join(f"{clean_expr(c)} AS c{i}" for i, c in enumerate(source.columns))
        row = _fetch(con, f"SELECT {', '.join(parts)} FROM (SELECT {cleaned} FROM raw)")
        rows = int(row[0])
        if rows == 0:
            from copilot.errors import BadSource

            raise BadSource(f"{source.path}: the file has a header but no data rows")
        columns = []
        width = 5 + len(_PATTERNS) + 3
        for i, col in enumerate(source.columns):
            vals = row[1 + i * width : 1 + (i + 1) * width]
            non_null, distinct, vmin, vmax, max_len = int(vals[0]), int(vals[1]), vals[2], vals[3], int(vals[4])
            matches = dict(
                zip([*_PATTERNS, "currency"], (int(v) for v in vals[5 : 5 + len(_PATTERNS) + 1]), strict=True)
            )
            dmin, dmax = vals[-2], vals[-1]
            columns.append(_column(col, rows, non_null, distinct, vmin, vmax, max_len, matches, dmin, dmax))
        _enumerations(con, source, columns)
        _deduplicate_names(columns)
        return Profile(
            source=str(source.path),
            format=source.format,
            rows=rows,
            columns=columns,
            primary_key=_primary_key(con, source, columns),
            origin=source.origin,
        )
    except duckdb.Error as exc:
        from copilot.errors import BadSource

        first = str(exc).splitlines()[0]
        detail = " ".join(str(exc).splitlines()[:3])
        if "unicode" in detail.lower() or "utf-8" in detail.lower():
            raise BadSource(f"{source.path}: not UTF-8 text; re-save the file as UTF-8") from None
        if "Expected Number of Columns" in detail or "Found:" in detail:
            raise BadSource(f"{source.path}: ragged rows ({detail})") from None
        raise BadSource(f"{source.path}: cannot read the data: {first}") from None
    finally:
        if own:
            con.close()


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    rows = con.execute(sql).fetchall()
    result = rows[0] if rows else None
    assert result is not None
    return result


def _column(
    source_name: str,
    rows: int,
    non_null: int,
    distinct: int,
    vmin: str | None,
    vmax: str | None,
    max_len: int,
    matches: dict[str, int],
    dmin: float | None,
    dmax: float | None,
) -> ColumnProfile:
    logical: LogicalType = "string"
    if non_null:
        for candidate in ("boolean", "integer", "number", "date", "timestamp"):
            if matches[candidate] == non_null:
                logical = candidate
                break
    # Leading zeros (postcodes, account numbers) are identifiers, not integers.
    if logical in ("integer", "number") and vmin is not None and re.match(r"^0[0-9]", vmin):
        logical = "string"
    patterns = [
        p
        for p in ("email", "phone", "uuid", "date", "timestamp", "currency")
        if non_null and matches[p] >= 0.9 * non_null
    ]
    if "phone" in patterns and (logical != "string" or {"date", "timestamp"} & set(patterns)):
        patterns.remove("phone")  # digit runs and ISO dates also look like phone numbers
    typed = {k: v for k, v in matches.items() if k in ("integer", "number", "date", "timestamp", "boolean")}
    mixed = (
        logical == "string" and non_null > 0 and any(0 < v < non_null and v >= 0.2 * non_null for v in typed.values())
    )
    if logical in ("integer", "number"):
        vmin = _number_text(dmin, logical)
        vmax = _number_text(dmax, logical)
    key = snake_case(source_name)
    personal = bool({"email", "phone"} & set(patterns)) or any(h in key for h in PERSONAL_NAME_HINTS)
    restricted = any(h in key for h in RESTRICTED_NAME_HINTS)
    return ColumnProfile(
        source_name=source_name,
        name=published_name(source_name, logical),
        logical_type=logical,
        rows=rows,
        nulls=rows - non_null,
        distinct=distinct,
        matches=matches,
        min_value=vmin,
        max_value=vmax,
        max_length=max_len,
        patterns=patterns,
        personal=personal or restricted,
        classification="restricted" if restricted else "confidential" if personal else "internal",
        mixed=mixed,
    )


def _number_text(value: float | None, logical: str) -> str | None:
    if value is None:
        return None
    return str(int(value)) if logical == "integer" else repr(float(value))


def _enumerations(con: duckdb.DuckDBPyConnection, source: Source, columns: list[ColumnProfile]) -> None:
    for i, col in enumerate(columns):
        non_null = col.rows - col.nulls
        # Only text: small integer ranges (counts, speeds) look enumerated on small samples but are not.
        if col.personal or col.logical_type != "string" or not 1 < col.distinct <= LOW_CARDINALITY:
            continue
        if non_null < 2 * col.distinct or col.distinct == col.rows:
            continue
        values = con.sql(
            f"SELECT DISTINCT {clean_expr(source.columns[i])} AS v FROM raw WHERE v IS NOT NULL ORDER BY v"
        ).fetchall()
        col.values = [str(v[0]) for v in values]


def _deduplicate_names(columns: list[ColumnProfile]) -> None:
    seen: dict[str, int] = {}
    for col in columns:
        if col.name in seen:
            seen[col.name] += 1
            col.name = f"{col.name}_{seen[col.name]}"
        else:
            seen[col.name] = 1


def _primary_key(con: duckdb.DuckDBPyConnection, source: Source, columns: list[ColumnProfile]) -> list[str]:
    unique = [c for c in columns if c.unique]
    if unique:
        # Prefer identifier-looking columns, then integers, then the leftmost.
        unique.sort(key=lambda c: (not c.name.endswith("_id") and c.name != "id", c.logical_type != "integer"))
        return [unique[0].name]
    candidates = [(i, c) for i, c in enumerate(columns) if c.required and not c.personal][:6]
    for a in range(len(candidates)):
        for b in range(a + 1, len(candidates)):
            (i, ca), (j, cb) = candidates[a], candidates[b]
            pair = f"{clean_expr(source.columns[i])}, {clean_expr(source.columns[j])}"
            distinct = _fetch(con, f"SELECT count(*) FROM (SELECT DISTINCT {pair} FROM raw)")[0]
            if distinct == ca.rows:
                return [ca.name, cb.name]
    return []


_DDL_TYPES: dict[str, LogicalType] = {
    "INT": "integer", "BIGINT": "integer", "SMALLINT": "integer", "TINYINT": "integer", "INTEGER": "integer",
    "DOUBLE": "number", "FLOAT": "number", "REAL": "number", "DECIMAL": "number", "NUMERIC": "number",
    "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamp",
}  # fmt: skip


def _profile_ddl(source: Source) -> Profile:
    """A DDL file has no rows: types, keys and nullability come from the declaration."""
    columns = []
    for col in source.ddl_columns:
        base = col.type.split("(")[0].upper().replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
        logical = _DDL_TYPES.get(base, "string")
        key = snake_case(col.name)
        personal = any(h in key for h in PERSONAL_NAME_HINTS)
        restricted = any(h in key for h in RESTRICTED_NAME_HINTS)
        columns.append(
            ColumnProfile(
                source_name=col.name,
                name=published_name(col.name, logical),
                logical_type=logical,
                rows=0,
                nulls=0,
                distinct=0,
                matches={},
                min_value=None,
                max_value=None,
                max_length=0,
                personal=personal or restricted,
                classification="restricted" if restricted else "confidential" if personal else "internal",
                declared_required=col.not_null,
                declared_unique=col.primary_key,
            )
        )
    pk = [c.name for c, d in zip(columns, source.ddl_columns, strict=True) if d.primary_key]
    return Profile(source=str(source.path), format="ddl", rows=0, columns=columns, primary_key=pk)
