"""The guard pipeline: one guardrails-ai validator per boundary, called at most once per message.

Threat model: see rag/guards/validators.py; this module decides what each finding does. Input:
refuse the request (nothing is retrieved or generated). Context: drop the flagged passages and go
on with the rest. Output: return the sanitised text; a reply that repeats protected text is
withheld entirely. Code (copilot drafts): fail the draft so the validation loop revises it.

Each boundary calls its validator's `Validator.validate` and acts on the findings itself, rather than
through a guardrails `Guard`: a Guard adds its run history, schema-to-RAIL conversion and re-ask
machinery, none of which a check on text without a model call uses, and cost 85 % of the guards'
time (docs/benchmarks.md, serving, fifth round). Each call is timed (`meshpilot bench guards`).
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
from rag.guards.validators import ContextSafety, InputSafety, OutputSafety, SafeCode, run

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


def _findings(found: list[tuple[str, str]]) -> list[Finding]:
    return [Finding(category, detail) for category, detail in found]


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
        # on_fail states the intent for a Guard that would run them (noop: the caller refuses; fix: the
        # cleaned value); this pipeline acts on the findings itself.
        self.input_check = InputSafety(detector, max_input_chars, on_fail="noop")
        self.context_check = ContextSafety(detector, on_fail="fix")
        hosts = tuple(h.lower() for h in allowed_link_hosts)
        domains = tuple(d.lower() for d in allowed_email_domains)
        self.output_check = OutputSafety(hosts, domains, on_fail="fix")

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
        found, _ = run(self.input_check, text, {"embedding": embedding})
        return GuardResult(not found, _findings(found), _ms(started))

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
        found, fixed = run(self.context_check, value, {})
        if not found:
            return ContextResult(True, [], _ms(started), list(range(len(texts))))
        kept = [int(p["index"]) for p in json.loads(str(fixed))]
        return ContextResult(False, _findings(found), _ms(started), kept)

    def sanitize_output(self, texts: Sequence[str], protected: Sequence[str] = ()) -> OutputResult:
        """The texts with secrets and personal data redacted, foreign links removed, markup escaped."""
        started = time.perf_counter()
        found, fixed = run(self.output_check, json.dumps(list(texts)), {"protected": list(protected)})
        cleaned = json.loads(str(fixed)) if found else list(texts)
        return OutputResult(not found, _findings(found), _ms(started), cleaned)

    def check_code(self, files: dict[str, str]) -> GuardResult:
        return check_code(files)


def context_needs_guard(flags: Sequence[Sequence[str] | None]) -> bool:
    """False when every passage carries a clean verdict of today's detector: the context validator would
    only read them back, so it is not called."""
    return not all(f is not None and not f for f in flags)


@cache
def _code_check() -> SafeCode:
    return SafeCode(on_fail="noop")


def check_code(files: dict[str, str]) -> GuardResult:
    """Drafted files (path -> text): destructive SQL or shell and secrets fail them."""
    started = time.perf_counter()
    found, _ = run(_code_check(), json.dumps(files), {})
    return GuardResult(not found, _findings(found), _ms(started))


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
