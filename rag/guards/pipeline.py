"""The guard pipeline: one guardrails-ai `Guard` per boundary, called at most once per message.

Threat model: see rag/guards/validators.py; this module decides what each finding does. Input:
refuse the request (nothing is retrieved or generated). Context: drop the flagged passages and go
on with the rest. Output: return the sanitised text; a reply that repeats protected text is
withheld entirely. Code (copilot drafts): fail the draft so the validation loop revises it.
Each call is timed, and guardrails' own share (the `Guard.validate` call minus the validators'
work) is reported by `meshpilot bench guards`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.guards.injection import InjectionDetector
from rag.guards.runtime import offline_guard
from rag.guards.validators import ContextSafety, InputSafety, OutputSafety, SafeCode

WITHHELD = "I can't share that reply: it repeated protected instructions."
BLOCKED = (
    "I can't help with that request: it looks like an attempt to change my instructions or to reveal "
    "them. Ask a question about the data products and standards you may read."
)


@dataclass(frozen=True)
class Finding:
    category: str
    detail: str


@dataclass
class GuardResult:
    passed: bool
    findings: list[Finding] = field(default_factory=list)
    ms: float = 0.0

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(f.category for f in self.findings))


@dataclass
class ContextResult(GuardResult):
    kept: list[int] = field(default_factory=list)


@dataclass
class OutputResult(GuardResult):
    texts: list[str] = field(default_factory=list)


def _findings(outcome: Any) -> list[Finding]:
    found = []
    for summary in outcome.validation_summaries or []:
        for span in summary.error_spans or []:
            category, _, detail = str(span.reason).partition(": ")
            found.append(Finding(category, detail))
    return found


class GuardPipeline:
    def __init__(
        self,
        detector: InjectionDetector,
        *,
        max_input_chars: int = 4000,
        allowed_link_hosts: Sequence[str] = (),
        allowed_email_domains: Sequence[str] = (),
    ) -> None:
        self.detector = detector
        # noop: refuse or fail ourselves from the findings; fix: take the validator's cleaned value.
        self.input_guard = offline_guard(InputSafety(detector, max_input_chars, on_fail="noop"), name="meshpilot-input")
        self.context_guard = offline_guard(ContextSafety(detector, on_fail="fix"), name="meshpilot-context")
        hosts = tuple(h.lower() for h in allowed_link_hosts)
        domains = tuple(d.lower() for d in allowed_email_domains)
        self.output_guard = offline_guard(OutputSafety(hosts, domains, on_fail="fix"), name="meshpilot-output")

    @classmethod
    def from_settings(cls, settings: Any, detector: InjectionDetector | None = None) -> GuardPipeline:
        return cls(
            detector or InjectionDetector.default(),
            max_input_chars=settings.max_question_chars,
            allowed_link_hosts=settings.guard_allowed_link_hosts,
            allowed_email_domains=settings.guard_allowed_email_domains,
        )

    def check_input(self, text: str, embedding: npt.NDArray[np.float32] | None = None) -> GuardResult:
        started = time.perf_counter()
        outcome = self.input_guard.validate(text, metadata={"embedding": embedding})
        return GuardResult(bool(outcome.validation_passed), _findings(outcome), _ms(started))

    def screen_context(
        self, texts: Sequence[str], flags: Sequence[Sequence[str] | None] | None = None
    ) -> ContextResult:
        """Which passages may reach the answerer (indexes into `texts`), and what the others carried.
        `flags`: each passage's verdict stored at ingestion by the current detector, or None to scan it."""
        started = time.perf_counter()
        stored = list(flags) if flags is not None else [None] * len(texts)
        if not context_needs_guard(stored):
            return ContextResult(True, [], _ms(started), list(range(len(texts))))
        value = json.dumps([{"text": t, "flags": f} for t, f in zip(texts, stored, strict=True)])
        outcome = self.context_guard.validate(value)
        findings = _findings(outcome)
        if not findings:
            return ContextResult(True, [], _ms(started), list(range(len(texts))))
        kept = [int(p["index"]) for p in json.loads(str(outcome.validated_output))]
        return ContextResult(False, findings, _ms(started), kept)

    def sanitize_output(self, texts: Sequence[str], protected: Sequence[str] = ()) -> OutputResult:
        """The texts with secrets and personal data redacted, foreign links removed, markup escaped."""
        started = time.perf_counter()
        outcome = self.output_guard.validate(json.dumps(list(texts)), metadata={"protected": list(protected)})
        findings = _findings(outcome)
        cleaned = json.loads(str(outcome.validated_output)) if findings else list(texts)
        return OutputResult(not findings, findings, _ms(started), cleaned)

    def check_code(self, files: dict[str, str]) -> GuardResult:
        return check_code(files)


def context_needs_guard(flags: Sequence[Sequence[str] | None]) -> bool:
    """False when every passage carries a clean verdict of today's detector: the context validator would
    only read them back, so its Guard call (a third of the guards' time a question) is skipped."""
    return not all(f is not None and not f for f in flags)


@cache
def _code_guard() -> Any:
    return offline_guard(SafeCode(on_fail="noop"), name="meshpilot-code")


def check_code(files: dict[str, str]) -> GuardResult:
    """Drafted files (path -> text): destructive SQL or shell and secrets fail them."""
    started = time.perf_counter()
    outcome = _code_guard().validate(json.dumps(files))
    return GuardResult(bool(outcome.validation_passed), _findings(outcome), _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


_DEFAULT_GUARDS: dict[tuple[object, ...], GuardPipeline] = {}


def default_guards(settings: Any) -> GuardPipeline:
    """One pipeline per output-guard configuration: guards are stateless and cost ~0.1 s to build."""
    key = (
        settings.max_question_chars,
        tuple(settings.guard_allowed_link_hosts),
        tuple(settings.guard_allowed_email_domains),
    )
    if key not in _DEFAULT_GUARDS:
        _DEFAULT_GUARDS[key] = GuardPipeline.from_settings(settings)
    return _DEFAULT_GUARDS[key]
