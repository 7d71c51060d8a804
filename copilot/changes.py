"""Changes: what differs between a base and a head contract, and which differences break consumers.

Breaking (lifecycle policy): a removed or renamed column, a narrowed type, a new required column,
a removed allowed value. A breaking change needs a major version bump.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Logical types a column may move to without breaking a reader of the old type.
WIDENINGS = {("integer", "number"), ("date", "timestamp")} | {
    (t, "string") for t in ("integer", "number", "boolean", "date", "timestamp")
}


@dataclass(frozen=True)
class Change:
    table: str
    column: str | None
    kind: str
    breaking: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _props(contract: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        str(obj.get("name")): {str(p.get("name")): p for p in obj.get("properties") or []}
        for obj in contract.get("schema") or []
    }


def _valid_values(prop: dict[str, Any]) -> set[str] | None:
    for rule in prop.get("quality") or []:
        if rule.get("metric") == "invalidValues":
            return {str(v) for v in (rule.get("arguments") or {}).get("validValues") or []}
    return None


def major(version: Any) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def compare_contracts(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    base_tables, head_tables = _props(base), _props(head)
    for table, old in base_tables.items():
        new = head_tables.get(table)
        if new is None:
            changes.append(Change(table, None, "table_removed", True, f"table {table} removed"))
            continue
        removed = [c for c in old if c not in new]
        added = [c for c in new if c not in old]
        for col in removed:
            twin = next((a for a in added if new[a].get("logicalType") == old[col].get("logicalType")), None)
            if twin is not None and len(removed) == len(added):
                added.remove(twin)
                changes.append(Change(table, col, "column_renamed", True, f"{col} renamed to {twin}"))
            else:
                changes.append(Change(table, col, "column_removed", True, f"{col} removed"))
        for col in added:
            required = bool(new[col].get("required"))
            kind = "required_column_added" if required else "column_added"
            changes.append(Change(table, col, kind, required, f"{col} added{' as required' if required else ''}"))
        for col in [c for c in old if c in new]:
            before, after = old[col].get("logicalType"), new[col].get("logicalType")
            if before != after:
                narrowed = (before, after) not in WIDENINGS
                kind = "type_narrowed" if narrowed else "type_widened"
                changes.append(Change(table, col, kind, narrowed, f"{col}: {before} -> {after}"))
            old_values, new_values = _valid_values(old[col]), _valid_values(new[col])
            if old_values is not None and new_values is not None and old_values - new_values:
                gone = sorted(old_values - new_values)
                changes.append(Change(table, col, "allowed_values_narrowed", True, f"{col}: no longer allows {gone}"))
            elif old_values is None and new_values is not None:
                changes.append(
                    Change(
                        table, col, "allowed_values_narrowed", True, f"{col}: now restricted to {sorted(new_values)}"
                    )
                )
    for table in head_tables.keys() - base_tables.keys():
        changes.append(Change(table, None, "table_added", False, f"table {table} added"))
    return changes
