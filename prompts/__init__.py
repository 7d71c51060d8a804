"""Versioned prompt templates: governed artifacts with an id, a version and an owner.

Each template is a YAML file beside this module. Imports nothing of ours (the bottom layer).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: str
    owner: str
    description: str
    system: str
    user: str

    def placeholders(self) -> set[str]:
        names = set()
        for part in (self.system, self.user):
            names |= {name for _, name, _, _ in string.Formatter().parse(part) if name}
        return names

    def render(self, **values: Any) -> tuple[str, str]:
        missing = self.placeholders() - values.keys()
        if missing:
            raise KeyError(f"prompt {self.id}@{self.version} needs {sorted(missing)}")
        return self.system.format(**values), self.user.format(**values)


@cache
def load(prompt_id: str) -> PromptTemplate:
    """Load `prompts/<prompt_id>.yaml`."""
    name = f"{prompt_id}.yaml"
    resource = resources.files(__package__).joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template {name} in the prompts package")
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    fields = ("id", "version", "owner", "description", "system", "user")
    missing = [f for f in fields if not data.get(f)]
    if missing or data["id"] != prompt_id:
        raise ValueError(f"prompt template {name} is missing {missing} or its id is not {prompt_id!r}")
    return PromptTemplate(**{f: str(data[f]) for f in fields})


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml")
    )
