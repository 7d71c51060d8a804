"""Output guard. Threat model: a draft is published into a repository and read by people and CI; it must
not carry secrets copied from data or a model, destructive SQL or shell commands someone might paste, or
personal data in examples and docs (a contract is classified lower than the data it describes).
"""

from __future__ import annotations

import re
from typing import Any

from copilot.reports import Check

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "password assignment": re.compile(r"(?i)\b(password|passwd|secret|api_key)\s*[:=]\s*['\"]?[^\s'\"]{6,}"),
    "credentials in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
}
DESTRUCTIVE_PATTERNS = {
    "DROP/TRUNCATE/DELETE": re.compile(r"(?i)\b(drop\s+(table|schema|database|view)|truncate\s+table|delete\s+from)\b"),
    "rm -rf": re.compile(r"\brm\s+-[a-z]*r[a-z]*f|\brm\s+-[a-z]*f[a-z]*r"),
    "curl | sh": re.compile(r"(?i)\b(curl|wget)\b[^\n|]*\|\s*(ba)?sh\b"),
    "chmod 777": re.compile(r"\bchmod\s+777\b"),
}
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")
# Addresses that are placeholders by definition (RFC 2606) or the owner's contact, never customer data.
SAFE_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", ".example")


def scan_text(path: str, text: str) -> list[str]:
    problems = [f"{path}: looks like a {label}" for label, rx in SECRET_PATTERNS.items() if rx.search(text)]
    problems += [f"{path}: {label}" for label, rx in DESTRUCTIVE_PATTERNS.items() if rx.search(text)]
    return problems


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
    problems: list[str] = []
    for path, text in sorted(files.items()):
        problems += scan_text(path, text)
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
