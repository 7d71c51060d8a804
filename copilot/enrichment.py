"""Enrichment: what the model adds to a deterministic draft (descriptions, purpose, business rules).

The reply is untrusted text: it must be YAML of the expected shape, name only real columns, and its
rules must be read-only SQL. What passes here still has to pass the full validation (rules are run on
the data); what fails becomes feedback for the next attempt.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

import prompts
from copilot.profiles import Profile
from copilot.reports import Check
from copilot.sql_guard import check_read_only
from copilot.standards import Standards
from rag.chat_models import ChatModel, Message
from rag.guards.pipeline import default_guards
from rag.settings import Settings

PROMPT_ID = "copilot_draft"
REPLY_KEYS = frozenset({"descriptions", "rules", "purpose"})


WITHHELD_VALUE = "[withheld: instruction-like text]"


def _screened(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Profile values are data an attacker may control: instruction-like ones never reach the model.
    One context-guard call screens every value of every column (min, max, enumerated values)."""
    spots = [(i, key, j) for i, c in enumerate(columns) for key in ("min", "max", "values") for j in _slots(c[key])]
    texts = [str(_get(columns[i][key], j)) for i, key, j in spots]
    if not texts:
        return columns
    kept = set(default_guards(Settings()).screen_context(texts).kept)
    for n, (i, key, j) in enumerate(spots):
        if n not in kept:
            if j is None:
                columns[i][key] = WITHHELD_VALUE
            else:
                columns[i][key][j] = WITHHELD_VALUE
    return columns


def _slots(value: Any) -> list[int | None]:
    if isinstance(value, list):
        return [j for j, v in enumerate(value) if isinstance(v, str)]
    return [None] if isinstance(value, str) else []


def _get(value: Any, j: int | None) -> Any:
    return value if j is None else value[j]


def profile_summary(profile: Profile) -> str:
    columns = [
        {
            "name": c.name,
            "type": c.logical_type,
            "null_rate": round(c.null_rate, 3),
            "distinct": c.distinct,
            "min": None if c.personal else c.min_value,
            "max": None if c.personal else c.max_value,
            "values": list(c.values) if c.values else c.values,
            "personal": c.personal,
        }
        for c in profile.columns
    ]
    return json.dumps({"rows": profile.rows, "columns": _screened(columns)}, ensure_ascii=False)


def render_messages(table: str, profile_json: str, standards: Standards, feedback: list[str]) -> list[Message]:
    template = prompts.load(PROMPT_ID)
    quotes = "\n".join(f"- {c.quote}" for c in standards.citations) or "- (none retrieved)"
    problems = "\n".join(f"- {f}" for f in feedback[-10:]) or "- (first attempt)"
    context = f"Table: {table}\nProfile: {profile_json}\nStandards:\n{quotes}"
    question = f"Problems with your previous reply, to fix now:\n{problems}\n\nReply with the YAML for table {table}."
    system, user = template.render(context=context, question=question)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def ask_model(
    model: ChatModel, product: str, table: str, profile: Profile, standards: Standards, feedback: list[str]
) -> str:
    messages = render_messages(table, profile_summary(profile), standards, feedback)
    return model.complete(messages, max_tokens=2048)


def eval_case(model: ChatModel, case: dict[str, Any]) -> tuple[bool, str]:
    """Runner of the prompt's eval cases (for `meshpilot eval prompts`): the reply parses, names only
    real columns, and every rule is read-only SQL."""
    from copilot.profiles import ColumnProfile

    columns = [
        ColumnProfile(
            source_name=c["name"],
            name=c["name"],
            logical_type=c["type"],
            rows=case["profile"]["rows"],
            nulls=0,
            distinct=c.get("distinct", 0),
            matches={},
            min_value=c.get("min"),
            max_value=c.get("max"),
            max_length=0,
            values=c.get("values"),
        )
        for c in case["profile"]["columns"]
    ]
    profile = Profile(source="eval", format="csv", rows=case["profile"]["rows"], columns=columns, primary_key=[])
    reply = model.complete(render_messages(case["table"], json.dumps(case["profile"]), Standards(), []))
    _, checks = parse_reply(reply, profile, case["table"])
    failed = [c for c in checks if not c.passed]
    return (not failed, "; ".join(f"{c.name}: {c.reason}" for c in failed) or "ok")


def _strip_fences(text: str) -> str:
    match = re.search(r"```(?:ya?ml)?\s*\n(.*?)```", text, flags=re.S)
    return match.group(1) if match else text


def parse_reply(text: str, profile: Profile, table: str) -> tuple[dict[str, Any], list[Check]]:
    """The enrichment the reply holds, and one check per kind of problem found."""
    try:
        data = yaml.safe_load(_strip_fences(text))
    except yaml.YAMLError as exc:
        return {}, [Check("model_reply_yaml", False, f"the reply is not valid YAML: {str(exc).splitlines()[0]}")]
    if not isinstance(data, dict):
        return {}, [Check("model_reply_yaml", False, "the reply is not a YAML mapping with descriptions and rules")]
    checks = [Check("model_reply_yaml", True, "valid YAML mapping")]
    unexpected = sorted(str(k) for k in data if k not in REPLY_KEYS)
    if unexpected:
        # A reply asking for actions (tool calls, shell, publishing) is refused, never executed.
        reason = (
            f"unexpected keys {unexpected}: only {sorted(REPLY_KEYS)} are read; the copilot runs no tools for a model"
        )
        checks.append(Check("model_reply_keys", False, reason))
    known = {c.name for c in profile.columns}
    descriptions = data.get("descriptions") or {}
    rules = data.get("rules") or []
    if not isinstance(descriptions, dict) or not isinstance(rules, list):
        return {}, [*checks, Check("model_reply_shape", False, "descriptions must be a mapping and rules a list")]
    unknown = sorted({str(k) for k in descriptions} - known)
    unknown += sorted({str(r.get("column")) for r in rules if isinstance(r, dict)} - known)
    checks.append(
        Check(
            "model_reply_columns",
            not unknown,
            f"unknown columns {unknown}; the columns are {sorted(known)}" if unknown else "every column exists",
        )
    )
    extra: dict[str, list[dict[str, Any]]] = {}
    bad_sql = []
    for rule in rules:
        if not isinstance(rule, dict) or not rule.get("sql") or rule.get("column") not in known:
            continue
        sql = str(rule["sql"]).replace("{table}", table).strip().rstrip(";")
        guard = check_read_only(sql)
        if not guard.passed:
            bad_sql.append(f"rule on {rule['column']}: {guard.reason}")
            continue
        extra.setdefault(str(rule["column"]), []).append(
            {
                "type": "sql",
                "description": str(rule.get("description") or "Business rule proposed by the model."),
                "query": sql,
                "mustBe": 0,
                "severity": "error",
                "dimension": "accuracy",
            }
        )
    checks.append(Check("model_reply_sql", not bad_sql, "; ".join(bad_sql) or "every rule is read-only SQL"))
    kept = {str(k): str(v) for k, v in descriptions.items() if k in known and v}
    purpose = str(data["purpose"]) if data.get("purpose") else None
    # The model's prose lands in the contract and the card: the output guard cleans it first.
    cleaned = default_guards(Settings()).sanitize_output([*kept.values(), purpose or ""])
    if not cleaned.passed:
        checks.append(Check("model_reply_output_guard", True, "cleaned: " + ", ".join(cleaned.categories)))
    enrichment = {
        "descriptions": dict(zip(kept, cleaned.texts[:-1], strict=True)),
        "rules": extra,
        "purpose": cleaned.texts[-1] or None,
    }
    return enrichment, checks
