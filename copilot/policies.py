"""Policies: the mesh's rules as data (policies.yaml), evaluated on a contract as `Check`s."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import yaml

from copilot.reports import Check

Rule = dict[str, Any]
Contract = dict[str, Any]


@cache
def load_policies() -> list[Rule]:
    data = yaml.safe_load(resources.files("copilot").joinpath("policies.yaml").read_text(encoding="utf-8"))
    rules: list[Rule] = data["rules"]
    return rules


def _properties(contract: Contract) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in contract.get("schema") or []:
        for prop in obj.get("properties") or []:
            yield obj.get("name", "?"), prop


def _pattern(contract: Contract, params: dict[str, Any]) -> list[str]:
    rx = re.compile(params["pattern"])
    return [f"{t}.{p.get('name')}" for t, p in _properties(contract) if not rx.match(str(p.get("name", "")))]


def _type_naming(contract: Contract, params: dict[str, Any]) -> list[str]:
    bad = []
    for table, prop in _properties(contract):
        name, rule = str(prop.get("name", "")), params.get(prop.get("logicalType", ""))
        if not rule:
            continue
        if "suffix" in rule and not name.endswith(rule["suffix"]):
            bad.append(f"{table}.{name} ({prop['logicalType']}) should end in {rule['suffix']}")
        if "prefixes" in rule and not name.startswith(tuple(rule["prefixes"])):
            bad.append(f"{table}.{name} ({prop['logicalType']}) should start with {' or '.join(rule['prefixes'])}")
    return bad


def _product_name(contract: Contract, params: dict[str, Any]) -> list[str]:
    pid, domain = str(contract.get("id", "")), str(contract.get("domain", ""))
    if not pid.startswith(f"{domain}_") or len(pid) > params["max_length"]:
        return [f"id {pid!r} is not <domain>_<name> for domain {domain!r} within {params['max_length']} characters"]
    return []


def _personal(contract: Contract, params: dict[str, Any]) -> list[str]:
    from copilot.profiles import PERSONAL_NAME_HINTS

    levels: list[str] = params["levels"]
    floor = levels.index(params["minimum"])
    bad = []
    for table, prop in _properties(contract):
        name = str(prop.get("name", ""))
        looks_personal = any(h in name for h in PERSONAL_NAME_HINTS) or prop.get("tags") == ["personal-data"]
        level = prop.get("classification")
        if looks_personal and (level not in levels or levels.index(level) < floor):
            bad.append(f"{table}.{name} looks like personal data but is classified {level!r}")
    return bad


def _field_present(contract: Contract, params: dict[str, Any]) -> list[str]:
    return [f"{t}.{p.get('name')}" for t, p in _properties(contract) if not p.get(params["field"])]


def _description(contract: Contract, params: dict[str, Any]) -> list[str]:
    description = contract.get("description") or {}
    if not isinstance(description, dict):
        return ["description is not an object with purpose, usage and limitations"]
    return [f"description.{f} missing" for f in params["fields"] if not description.get(f)]


def _owner(contract: Contract, params: dict[str, Any]) -> list[str]:
    team = contract.get("team") or {}
    members = team.get("members") if isinstance(team, dict) else team
    if not any(isinstance(m, dict) and m.get("role") == params["role"] and m.get("username") for m in members or []):
        return ["no team member with the role owner"]
    return []


def _sla(contract: Contract, params: dict[str, Any]) -> list[str]:
    present = {s.get("property") for s in contract.get("slaProperties") or []}
    return [f"slaProperties lacks {p}" for p in params["required"] if p not in present]


def _support(contract: Contract, params: dict[str, Any]) -> list[str]:
    return [] if contract.get("support") else ["no support channel"]


def _primary_key(contract: Contract, params: dict[str, Any]) -> list[str]:
    bad = []
    for obj in contract.get("schema") or []:
        if not any(p.get("primaryKey") for p in obj.get("properties") or []):
            bad.append(f"table {obj.get('name')} declares no primary key")
    return bad


def _equals(contract: Contract, params: dict[str, Any]) -> list[str]:
    return [f"{k} is {contract.get(k)!r}, not {v!r}" for k, v in params["fields"].items() if contract.get(k) != v]


def _minimum_quality(contract: Contract, params: dict[str, Any]) -> list[str]:
    bad = []
    for obj in contract.get("schema") or []:
        metrics = {q.get("metric") for q in obj.get("quality") or []}
        has_rows = any(s.get("server") for s in contract.get("servers") or [])
        if has_rows and "rowCount" not in metrics:
            bad.append(f"table {obj.get('name')} has no rowCount rule")
        for prop in obj.get("properties") or []:
            if prop.get("required") and not any(q.get("metric") == "nullValues" for q in prop.get("quality") or []):
                bad.append(f"required column {prop.get('name')} has no nullValues rule")
    return bad


KINDS: dict[str, Callable[[Contract, dict[str, Any]], list[str]]] = {
    "property_name_pattern": _pattern,
    "type_naming": _type_naming,
    "product_name_prefix": _product_name,
    "personal_classification": _personal,
    "property_field_present": _field_present,
    "contract_description": _description,
    "owner_present": _owner,
    "sla_properties": _sla,
    "support_present": _support,
    "primary_key": _primary_key,
    "field_equals": _equals,
    "minimum_quality": _minimum_quality,
}


def check_policies(contract: Contract, rules: list[Rule] | None = None) -> list[Check]:
    checks = []
    for rule in rules if rules is not None else load_policies():
        evaluate = KINDS.get(rule["kind"])
        if evaluate is None:
            checks.append(Check(f"policy:{rule['id']}", False, f"unknown policy kind {rule['kind']!r}"))
            continue
        problems = evaluate(contract, rule.get("params") or {})
        reason = "; ".join(problems[:5]) if problems else rule["description"]
        checks.append(Check(f"policy:{rule['id']}", not problems, reason, {"source": rule.get("source")}))
    return checks
