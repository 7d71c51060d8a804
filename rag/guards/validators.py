"""meshpilot's guardrails-ai validators, one per boundary, each doing its work in one pass.

Threat model, per validator:
- `InputSafety` (a user's question or chat message): direct prompt injection and jailbreaks, also
  encoded (base64, hex, rot13), in other languages or disguised (case, zero-width characters,
  homoglyphs); system-prompt extraction; inputs too large to handle in bounded time.
- `ContextSafety` (passages retrieved for a question, sample values given to a drafting model):
  instructions hidden in documents (indirect injection). A flagged passage is dropped and logged;
  the rest reach a model only as quoted data (rag.answers.render_context).
- `OutputSafety` (answers, quotes, chat replies): secrets and personal data are redacted; links and
  images to hosts outside the allowlist are removed (exfiltration through rendered Markdown); HTML
  is escaped; a reply that repeats protected text (the system prompt, canaries) is withheld.
- `SafeCode` (drafted SQL, shell, YAML, docs): destructive statements and commands, and secrets,
  fail the draft; the copilot's validation loop sends the failure back for revision.

Structured findings travel as error spans whose reason is `category: detail`, so one
`Validator.validate` call per boundary returns both the fixed value and what was found (`run`).
"""

from __future__ import annotations

import json
import logging
import unicodedata
from typing import Any

from rag.guards.runtime import guardrails

guardrails()  # offline settings first: validators read them when constructed
from guardrails.classes.validation.validation_result import (  # noqa: E402
    ErrorSpan,
    FailResult,
    PassResult,
    ValidationResult,
)
from guardrails.validator_base import Validator, register_validator  # noqa: E402

from rag.guards import patterns as p  # noqa: E402
from rag.guards.documents import chunk_flags  # noqa: E402
from rag.guards.injection import InjectionDetector  # noqa: E402
from rag.guards.normalize import normalise  # noqa: E402

log = logging.getLogger("meshpilot.guards")


def run(validator: Validator, value: str, metadata: dict[str, Any]) -> tuple[list[tuple[str, str]], Any]:
    """One validator's verdict through guardrails-ai's `Validator.validate`: the (category, detail)
    findings, and the fixed value of a failed check (None where it passed or has no fix)."""
    result = validator.validate(value, metadata)
    if not isinstance(result, FailResult):
        return [], None
    findings = []
    for span in result.error_spans or []:
        category, _, detail = str(span.reason).partition(": ")
        findings.append((category, detail))
    return findings, result.fix_value


def _fail(value: str, findings: list[tuple[str, str]], fix: Any = None) -> FailResult:
    spans = [ErrorSpan(start=0, end=len(value), reason=f"{category}: {detail}") for category, detail in findings]
    message = "; ".join(f"{c}: {d}" for c, d in findings)
    if fix is None:
        return FailResult(error_message=message, error_spans=spans)
    return FailResult(error_message=message, error_spans=spans, fix_value=fix)


@register_validator(name="meshpilot/input-safety", data_type="string")
class InputSafety(Validator):  # type: ignore[misc]
    """Refuses injection, jailbreaks, system-prompt extraction and oversized input.

    metadata: `embedding` (the question's vector that retrieval computes anyway; optional).
    """

    def __init__(self, detector: InjectionDetector, max_chars: int, **kwargs: Any) -> None:
        super().__init__(max_chars=max_chars, **kwargs)
        self.detector = detector
        self.max_chars = max_chars

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        if len(text) > self.max_chars:
            return _fail(text, [("oversized_input", f"{len(text)} characters, the limit is {self.max_chars}")])
        verdict = self.detector.check(text, metadata.get("embedding"))
        if verdict.flagged:
            return _fail(text, [(c, f"score {verdict.score:.3f}") for c in verdict.categories])
        return PassResult()


@register_validator(name="meshpilot/context-safety", data_type="string")
class ContextSafety(Validator):  # type: ignore[misc]
    """Drops passages that carry instructions. The value is a JSON list of `{"text", "flags"}`, where
    `flags` is the verdict stored at ingestion by the current detector ([] = clean) or null (scan it
    now); the fix is the kept passages, each with its `index` in the input."""

    def __init__(self, detector: InjectionDetector, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.detector = detector

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        passages = json.loads(str(value))
        kept, findings = [], []
        for index, passage in enumerate(passages):
            stored = passage.get("flags")
            # Unscanned passages get the ingestion-time scan now, on the text alone (no chunk vector here).
            categories = list(stored) if stored is not None else chunk_flags(self.detector, [passage["text"]])[0]
            if categories:
                findings += [(c, f"passage {index}") for c in categories]
                log.warning("context guard dropped passage %s (%s)", passage.get("id", index), ",".join(categories))
            else:
                kept.append({**passage, "index": index})
        if not findings:
            return PassResult()
        return _fail(str(value), findings, json.dumps(kept))


class _Sanitiser:
    """Redaction, link removal and escaping in one pass over a text; what was done, by category."""

    def __init__(self, allowed_hosts: tuple[str, ...], allowed_email_domains: tuple[str, ...]) -> None:
        self.allowed_hosts = allowed_hosts
        self.allowed_email_domains = allowed_email_domains

    def clean(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        found: list[tuple[str, str]] = []
        # Invisible characters and full-width forms would split a secret, an address or a URL past the
        # patterns; removing them changes nothing a reader sees.
        text = unicodedata.normalize("NFKC", text).translate(p.INVISIBLE)
        for label, rx in p.SECRET_PATTERNS.items():
            text, n = rx.subn("[redacted secret]", text)
            if n:
                found.append(("secret", label))
        text = self._links(text, found)
        text = p.EMAIL.sub(lambda m: self._email(m.group(0), found), text)
        text = p.CARD.sub(lambda m: self._card(m.group(0), found), text)
        text = p.IBAN.sub(lambda m: self._sub(found, "personal_data", "IBAN", "[redacted account]"), text)
        text = p.PHONE.sub(lambda m: self._phone(m.group(0), found), text)
        escaped = p.HTML_TAG.sub("&lt;", text)
        if escaped != text:
            found.append(("html", "markup escaped"))
        return escaped, found

    @staticmethod
    def _sub(found: list[tuple[str, str]], category: str, detail: str, replacement: str) -> str:
        found.append((category, detail))
        return replacement

    def _email(self, address: str, found: list[tuple[str, str]]) -> str:
        if p.email_is_safe(address, self.allowed_email_domains):
            return address
        return self._sub(found, "personal_data", "e-mail address", "[redacted e-mail]")

    def _card(self, digits: str, found: list[tuple[str, str]]) -> str:
        return self._sub(found, "personal_data", "card number", "[redacted card]") if p.luhn_valid(digits) else digits

    def _phone(self, number: str, found: list[tuple[str, str]]) -> str:
        return self._sub(found, "personal_data", "phone number", "[redacted phone]") if p.phone_like(number) else number

    def _links(self, text: str, found: list[tuple[str, str]]) -> str:
        def image(m: Any) -> str:
            if p.host_allowed(m.group(2), self.allowed_hosts):
                return str(m.group(0))
            return self._sub(found, "exfiltration", f"image from {p.url_host(m.group(2)) or 'a script URL'}", "")

        def link(m: Any) -> str:
            if p.host_allowed(m.group(2), self.allowed_hosts):
                return str(m.group(0))
            found.append(("exfiltration", f"link to {p.url_host(m.group(2)) or 'a script URL'}"))
            return str(m.group(1))

        def bare(m: Any) -> str:
            if p.host_allowed(m.group(0), self.allowed_hosts):
                return str(m.group(0))
            return self._sub(found, "exfiltration", f"URL of {p.url_host(m.group(0)) or 'a script'}", "[link removed]")

        text = p.MARKDOWN_IMAGE.sub(image, text)
        text = p.MARKDOWN_LINK.sub(link, text)
        return p.URL.sub(bare, text)


@register_validator(name="meshpilot/output-safety", data_type="string")
class OutputSafety(Validator):  # type: ignore[misc]
    """Sanitises a JSON list of texts (an answer and its quotes) in one call; the fix is the cleaned list.

    metadata: `protected` (texts that must never be repeated: the system prompt, canaries)."""

    def __init__(
        self, allowed_hosts: tuple[str, ...] = (), allowed_email_domains: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sanitiser = _Sanitiser(tuple(allowed_hosts), tuple(allowed_email_domains))

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        texts = json.loads(str(value))
        cleaned, findings = [], []
        protected = [normalise(t) for t in metadata.get("protected") or [] if t and len(t.strip()) >= 12]
        for text in texts:
            if protected and any(t in normalise(text) for t in protected):
                findings.append(("system_prompt_leak", "the reply repeats protected text"))
                cleaned.append("")
                continue
            clean, found = self.sanitiser.clean(text)
            cleaned.append(clean)
            findings += found
        if not findings:
            return PassResult()
        return _fail(str(value), list(dict.fromkeys(findings)), json.dumps(cleaned))


@register_validator(name="meshpilot/safe-code", data_type="string")
class SafeCode(Validator):  # type: ignore[misc]
    """Fails drafted files (a JSON object path -> text) carrying destructive commands or secrets."""

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        files = json.loads(str(value))
        findings = []
        for path, text in sorted(files.items()):
            plain = normalise(text) if path.endswith((".sql", ".sh", ".py")) else text
            findings += [
                ("secret", f"{path}: looks like a {label}")
                for label, rx in p.SECRET_PATTERNS.items()
                if rx.search(text)
            ]
            findings += [
                ("destructive", f"{path}: {label}") for label, rx in p.DESTRUCTIVE_PATTERNS.items() if rx.search(plain)
            ]
        return _fail(str(value), findings) if findings else PassResult()
