"""The draft request: what the user asked for (data, name, domain, owner) and the product's address."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from copilot.errors import UsageError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


@dataclass(frozen=True)
class DraftRequest:
    data: str
    name: str
    domain: str
    owner: str
    version: str = "1.0.0"

    def __post_init__(self) -> None:
        for label, value in (("--name", self.name), ("--domain", self.domain)):
            if not _NAME.match(value):
                raise UsageError(f"{label} {value!r}: use snake_case, start with a letter, at most 48 characters")
        if not self.owner.strip():
            raise UsageError("--owner is empty")

    @property
    def product_id(self) -> str:
        """`<domain>_<name>` as the naming standard asks, without repeating the domain."""
        return self.name if self.name.startswith(f"{self.domain}_") else f"{self.domain}_{self.name}"

    @property
    def table(self) -> str:
        return self.name.removeprefix(f"{self.domain}_")

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def address(self) -> str:
        return f"dp://{self.domain}/{self.table}/v{self.major}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
