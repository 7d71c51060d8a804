"""Validation reports: structured `Check` results, never exceptions, written as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidationReport:
    checks: list[Check] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def add(self, name: str, passed: bool, reason: str, **details: Any) -> None:
        self.checks.append(Check(name, passed, reason, details))

    def extend(self, checks: list[Check]) -> None:
        self.checks.extend(checks)

    def feedback(self) -> list[str]:
        """What failed, one line each: what the drafting step gets back."""
        return [f"{c.name}: {c.reason}" for c in self.failures]

    def summary(self) -> list[dict[str, Any]]:
        return [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(checks=[Check(**c) for c in data.get("checks", [])])
