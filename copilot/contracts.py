"""Contracts: the ODCS v3.1.0 data contract drafted from a profile and the mesh's standards.

Quality rules use the ODCS library metrics (nullValues, duplicateValues, rowCount, invalidValues,
missingValues) and plain SQL for ranges, so `datacontract test` executes every one of them.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from copilot.profiles import NULL_MARKERS, ColumnProfile, Profile
from copilot.requests import DraftRequest
from copilot.standards import Standards

CONTRACT_FILE = "datacontract.odcs.yaml"
_PHYSICAL = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_PERSONAL_EXAMPLE = {"email": "user@example.com", "phone": "+1 555 0100"}


def column_description(col: ColumnProfile) -> str:
    parts = [f"{col.logical_type.capitalize()} column `{col.source_name}` of the source"]
    if col.patterns:
        parts.append(f"values look like {', '.join(col.patterns)}")
    if col.nulls:
        parts.append(f"{col.null_rate:.1%} missing")
    if col.mixed:
        parts.append("mixed value types, kept as text")
    return "; ".join(parts) + "."


def examples(col: ColumnProfile) -> list[str] | None:
    """Examples never carry personal data: personal columns get a made-up value or none."""
    if col.personal:
        for pattern, fake in _PERSONAL_EXAMPLE.items():
            if pattern in col.patterns:
                return [fake]
        return None
    if col.values:
        return col.values[:3]
    values = [v for v in (col.min_value, col.max_value) if v is not None]
    return list(dict.fromkeys(values)) or None


def column_quality(col: ColumnProfile, table: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if col.rows == 0:  # a DDL source: declared nullability only
        if col.required:
            rules.append({"metric": "nullValues", "mustBe": 0, "severity": "error", "dimension": "completeness"})
        return rules
    if col.required:
        rules.append({"metric": "nullValues", "mustBe": 0, "severity": "error", "dimension": "completeness"})
    else:
        tolerance = min(100, math.ceil(col.null_rate * 100) + 5)
        rules.append(
            {
                "metric": "nullValues",
                "mustBeLessOrEqualTo": tolerance,
                "unit": "percent",
                "severity": "warning",
                "dimension": "completeness",
            }
        )
    if col.required and col.logical_type == "string":
        rules.append(
            {
                "metric": "missingValues",
                "arguments": {"missingValues": [m for m in NULL_MARKERS if m]},
                "mustBe": 0,
                "severity": "error",
                "dimension": "completeness",
            }
        )
    if col.unique:
        rules.append({"metric": "duplicateValues", "mustBe": 0, "severity": "error", "dimension": "uniqueness"})
    if col.values:
        valid: list[Any] = [int(v) for v in col.values] if col.logical_type == "integer" else list(col.values)
        rules.append(
            {
                "metric": "invalidValues",
                "arguments": {"validValues": valid},
                "mustBe": 0,
                "severity": "error",
                "dimension": "conformity",
            }
        )
    if col.logical_type in ("integer", "number") and col.min_value is not None and col.max_value is not None:
        low, high = col.min_value, col.max_value
        rules.append(
            {
                "type": "sql",
                "description": f"{col.name} lies between {low} and {high}, the range seen when drafted.",
                "query": f"SELECT COUNT(*) FROM {table} WHERE {col.name} < {low} OR {col.name} > {high}",
                "mustBe": 0,
                "severity": "warning",
                "dimension": "accuracy",
            }
        )
    return rules


PATTERN_REGEX = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "currency": r"^[A-Z]{3}$",
}


def type_options(col: ColumnProfile) -> dict[str, Any]:
    """Bounds seen in the data, as ODCS logicalTypeOptions (`datacontract test` checks each one)."""
    if col.rows == 0 or col.nulls == col.rows:
        return {}
    if col.logical_type in ("integer", "number") and col.min_value is not None and col.max_value is not None:
        cast = int if col.logical_type == "integer" else float
        return {"minimum": cast(col.min_value), "maximum": cast(col.max_value)}
    if col.logical_type == "string":
        options: dict[str, Any] = {"maxLength": col.max_length}
        pattern = next(
            (p for p in PATTERN_REGEX if p in col.patterns and col.matches.get(p) == col.rows - col.nulls), None
        )
        if pattern:
            options["pattern"] = PATTERN_REGEX[pattern]
        return options
    return {}


def draft_contract(
    request: DraftRequest,
    profile: Profile,
    standards: Standards,
    published: str,
    descriptions: dict[str, str] | None = None,
    extra_rules: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The contract of the published product; `published` is where the pipeline writes it (Parquet)."""
    descriptions = descriptions or {}
    table = request.table
    properties = []
    for col in profile.columns:
        prop: dict[str, Any] = {
            "name": col.name,
            "logicalType": col.logical_type,
            "physicalType": _PHYSICAL[col.logical_type],
            **({"logicalTypeOptions": opts} if (opts := type_options(col)) else {}),
            "description": descriptions.get(col.name) or column_description(col),
            "required": col.required,
            "unique": col.unique,
            "primaryKey": col.name in profile.primary_key,
        }
        if col.name in profile.primary_key:
            prop["primaryKeyPosition"] = profile.primary_key.index(col.name) + 1
        prop["classification"] = col.classification
        if ex := examples(col):
            prop["examples"] = ex
        if rules := column_quality(col, table) + (extra_rules or {}).get(col.name, []):
            prop["quality"] = rules
        properties.append(prop)
    table_quality: list[dict[str, Any]] = []
    if profile.rows:
        table_quality.append(
            {"metric": "rowCount", "mustBeGreaterThan": 0, "severity": "error", "dimension": "completeness"}
        )
    if len(profile.primary_key) > 1:
        table_quality.append(
            {
                "type": "sql",
                "description": "The composite primary key is unique.",
                "query": f"SELECT COUNT(*) FROM (SELECT {', '.join(profile.primary_key)} FROM {table} "
                f"GROUP BY {', '.join(profile.primary_key)} HAVING COUNT(*) > 1) AS duplicates",
                "mustBe": 0,
                "severity": "error",
                "dimension": "uniqueness",
            }
        )
    schema_object: dict[str, Any] = {
        "name": table,
        "physicalName": table,
        "logicalType": "object",
        "physicalType": "table",
        "description": f"{request.product_id} as published from {profile.format} source.",
        "properties": properties,
    }
    if table_quality:
        schema_object["quality"] = table_quality
    contract: dict[str, Any] = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": request.product_id,
        "name": request.product_id,
        "version": request.version,
        "status": "draft",
        "domain": request.domain,
        "dataProduct": request.product_id,
        "description": {
            "purpose": f"Publishes {table} for the {request.domain} domain, drafted from the source data.",
            "usage": "Query the published view; join on the primary key.",
            "limitations": f"Profiled on {profile.rows} rows; review the inferred rules before activating.",
        },
        "team": {"name": f"{request.domain}-data", "members": [{"username": request.owner, "role": "owner"}]},
        "support": [{"channel": f"#{request.product_id}-help", "tool": "slack"}],
        "schema": [schema_object],
        "slaProperties": [
            {"property": "frequency", "value": standards.freshness_hours, "unit": "h"},
            {"property": "latency", "value": standards.freshness_hours, "unit": "h"},
            {"property": "retention", "value": standards.retention_years, "unit": "y"},
            {"property": "availability", "value": standards.availability_pct, "unit": "percent"},
        ],
        "tags": [f"classification:{product_classification(profile)}"],
    }
    if profile.format != "ddl":
        # The raw source cannot be tested as is when it holds null markers (`NA` in a number column
        # fails DuckDB's typed read), so the first server is the product as the pipeline publishes it.
        contract["servers"] = [
            {
                "server": "published",
                "type": "local",
                "path": published,
                "format": "parquet",
                "description": "The product as pipeline/ publishes it; `datacontract test` runs here.",
            },
            _source_server(profile),
        ]
    return contract


def _source_server(profile: Profile) -> dict[str, Any]:
    if profile.origin:
        origin = profile.origin
        return {
            "server": "source",
            "type": "postgres",
            "host": origin["host"],
            "port": origin["port"],
            "database": origin["database"],
            "schema": origin["schema"],
            "description": f"The table {origin['schema']}.{origin['table']} the product is drafted from.",
        }
    return {
        "server": "source",
        "type": "local",
        "path": profile.source,
        "format": "json" if profile.format == "jsonl" else profile.format,
        "description": "The source the product is drafted from (original column names).",
    }


def product_classification(profile: Profile) -> str:
    order = ["public", "internal", "confidential", "restricted"]
    return max((c.classification for c in profile.columns), key=order.index, default="internal")


def contract_yaml(contract: dict[str, Any]) -> str:
    return yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=float("inf"))
