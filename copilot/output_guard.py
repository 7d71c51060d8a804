"""Output guard. Threat model: a draft is published into a repository and read by people and CI; it must
not carry secrets copied from data or a model, destructive SQL or shell commands someone might paste, or
personal data in examples and docs (a contract is classified lower than the data it describes).
Secrets and commands are the guardrails-ai code guard's (rag/guards/); personal data is checked here,
against the contract's own examples and team.
"""

from __future__ import annotations

import re
from typing import Any

from copilot.reports import Check
from rag.guards.patterns import EMAIL, PHONE, SAFE_EMAIL_DOMAINS
from rag.guards.pipeline import check_code


def personal_values(values: list[Any], allowed: set[str]) -> list[str]:
    found = []
    for value in values:
        text = str(value)
        for email in EMAIL.findall(text):
            if email not in allowed and not email.lower().endswith(SAFE_EMAIL_DOMAINS):
                found.append(email)
        stripped = text.strip()
        is_date = re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", stripped)
        # +1 555 01xx is the range reserved for fiction: our own placeholder examples use it.
        if PHONE.fullmatch(stripped) and not is_date and not stripped.startswith("+1 555"):
            found.append(text)
    return found


def check_outputs(files: dict[str, str], contract: dict[str, Any] | None, personal_samples: list[str]) -> list[Check]:
    """Secrets and destructive commands anywhere; personal data in examples and in the card."""
    problems = [f.detail for f in check_code(files).findings]
    secrets = Check("output_guard_secrets_and_commands", not problems, "; ".join(problems) or "none found")
    allowed = set()
    leaks: list[str] = []
    if contract:
        allowed = {m.get("username", "") for m in (contract.get("team") or {}).get("members", [])}
        for obj in contract.get("schema") or []:
            for prop in obj.get("properties") or []:
                leaks += [
                    f"examples of {prop.get('name')}: {v}" for v in personal_values(prop.get("examples") or [], allowed)
                ]
    card = files.get("README.md", "")
    leaks += [f"README.md quotes {v}" for v in personal_samples if v and v in card]
    leaks += [f"README.md: {v}" for v in personal_values(EMAIL.findall(card), allowed)]
    personal = Check(
        "output_guard_personal_data", not leaks, "; ".join(leaks[:5]) or "no personal data in examples or docs"
    )
    return [secrets, personal]
