"""What the output guards look for: secrets, personal data, destructive commands, links and markup.

Threat model: text leaving meshpilot (an answer, a quote, a drafted contract or pipeline) carries
something it must not: a credential copied from a document or a model, a customer's e-mail address,
phone or card number, a command someone might paste (DROP TABLE, rm -rf, curl | sh), a link or image
that sends data to an attacker's host when rendered, or markup a browser would run. The patterns
are written for one pass over the text; evasions by case or zero-width characters are undone first.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "password assignment": re.compile(
        r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?token)\b(\s*[:=]\s*)['\"]?([^\s'\"]{6,})"
    ),
    "credentials in a URL": re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@"),
}
DESTRUCTIVE_PATTERNS: dict[str, re.Pattern[str]] = {
    "DROP/TRUNCATE/DELETE": re.compile(
        r"(?i)\b(drop\s+(table|schema|database|view|index|role|user)|truncate\s+table|delete\s+from|"
        r"alter\s+table\s+\S+\s+drop)\b"
    ),
    "GRANT/REVOKE": re.compile(r"(?i)\b(grant\s+all|revoke\s+all)\b"),
    "rm -rf": re.compile(r"\brm\s+-[a-z]*r[a-z]*f|\brm\s+-[a-z]*f[a-z]*r|\brm\s+--recursive\b"),
    "curl | sh": re.compile(r"(?i)\b(curl|wget)\b[^\n|]*\|\s*(sudo\s+)?(ba|z)?sh\b"),
    "chmod 777": re.compile(r"\bchmod\s+(-[rR]\s+)?777\b"),
    "disk wipe": re.compile(r"\b(mkfs(\.\w+)?\s+/dev/|dd\s+if=/dev/(zero|random|urandom)\s+of=/dev/)"),
    "fork bomb": re.compile(r":\(\)\s*\{\s*:\|:&\s*\};:"),
}
# Zero-width and soft-hyphen characters: invisible, so removing them from a reply changes nothing a reader sees.
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"(?<![\w.-])\+?\d[\d ().-]{7,}\d(?![\w-])")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# Addresses that are placeholders by definition (RFC 2606).
SAFE_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", ".example")
URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`)\]]+|\b(?:javascript|data|vbscript):[^\s<>\"'`)\]]+", re.IGNORECASE)
MARKDOWN_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\(\s*([^)\s]+)(?:\s+\"[^\"\n]*\")?\s*\)")
MARKDOWN_LINK = re.compile(r"(?<!!)\[([^\]\n]{0,500})\]\(\s*([^)\s]+)(?:\s+\"[^\"\n]*\")?\s*\)")
HTML_TAG = re.compile(r"<(?=[A-Za-z/!?])")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def luhn_valid(digits: str) -> bool:
    numbers = [int(d) for d in digits if d.isdigit()]
    if not 13 <= len(numbers) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(numbers)):
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def email_is_safe(address: str, allowed_domains: tuple[str, ...] = ()) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    return domain.endswith(SAFE_EMAIL_DOMAINS) or any(domain == d or domain.endswith("." + d) for d in allowed_domains)


def phone_like(text: str) -> bool:
    """A phone number, not a date, a version or a number with a decimal point; +1 555 01xx is fiction."""
    stripped = text.strip()
    digits = sum(ch.isdigit() for ch in stripped)
    if DATE.match(stripped) or digits < 9 or stripped.startswith("+1 555"):
        return False
    return bool(re.search(r"[ ()+-]", stripped)) or stripped.startswith("+")


def url_host(url: str) -> str | None:
    """The host of an absolute URL; None for relative links and for scriptable schemes."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("javascript", "data", "vbscript"):
        return None
    return (parts.hostname or "").lower() or None


def host_allowed(url: str, allowed_hosts: tuple[str, ...]) -> bool:
    parts = urlsplit(url.strip())
    if not parts.scheme and not parts.netloc:
        return not url.strip().lower().startswith(("javascript:", "data:", "vbscript:"))  # relative link
    host = url_host(url)
    return host is not None and any(host == h or host.endswith("." + h) for h in allowed_hosts)
