"""Versioned prompt templates: governed artifacts with an id, a version and an owner.

Each template is a YAML file beside this module. Imports nothing of ours (the bottom layer).
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
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
    cases: list[dict[str, Any]] = field(default_factory=list, compare=False)

    @property
    def sha256(self) -> str:
        """Fingerprint of what the model sees; a change needs a new version (see versions.lock)."""
        return hashlib.sha256(json.dumps([self.system, self.user]).encode()).hexdigest()

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


class PromptIntegrityError(ValueError):
    """A template whose text is not the released text recorded in versions.lock."""


@cache
def load(prompt_id: str) -> PromptTemplate:
    """Load `prompts/<prompt_id>.yaml`, refusing text that versions.lock does not record (see verify)."""
    template = read_template(prompt_id)
    verify(template)
    return template


def verify(template: PromptTemplate) -> None:
    """Only released text reaches a model: an edit without a version bump and a lock update is refused."""
    entry = read_lock().get(template.id)
    if entry is None or entry["sha256"] != template.sha256 or entry["version"] != template.version:
        raise PromptIntegrityError(
            f"prompt {template.id}@{template.version} is not the released text in versions.lock "
            "(bump its version and run `meshpilot eval prompts --update-lock`)"
        )


@cache
def read_template(prompt_id: str) -> PromptTemplate:
    """Load `prompts/<prompt_id>.yaml` as it is on disk, released or not."""
    name = f"{prompt_id}.yaml"
    resource = resources.files(__package__).joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template {name} in the prompts package")
    return parse(resource.read_text(encoding="utf-8"), prompt_id)


def parse(text: str, prompt_id: str) -> PromptTemplate:
    name = f"{prompt_id}.yaml"
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"prompt template {name} is not a YAML mapping")
    fields = ("id", "version", "owner", "description", "system", "user")
    missing = [f for f in fields if not data.get(f)]
    if missing or data["id"] != prompt_id:
        raise ValueError(f"prompt template {name} is missing {missing} or its id is not {prompt_id!r}")
    cases = data.get("cases") or []
    if not isinstance(cases, list):
        raise ValueError(f"prompt template {name}: `cases` must be a list")
    return PromptTemplate(**{f: str(data[f]) for f in fields}, cases=cases)


def lock_path() -> Any:
    return resources.files(__package__).joinpath("versions.lock")


def read_lock() -> dict[str, dict[str, str]]:
    """prompt id -> {"version", "sha256"} as last released."""
    data: dict[str, dict[str, str]] = json.loads(lock_path().read_text(encoding="utf-8"))
    return data


def lock_entries() -> dict[str, dict[str, str]]:
    """What versions.lock should hold for the templates as they are now."""
    return {pid: {"version": read_template(pid).version, "sha256": read_template(pid).sha256} for pid in available()}


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml")
    )


def lock_problems(
    locked: dict[str, dict[str, str]] | None = None, current: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """Why versions.lock and the templates disagree: an edit without a version bump, or a stale lock."""
    locked = read_lock() if locked is None else locked
    current = lock_entries() if current is None else current
    problems = []
    for pid, now in current.items():
        before = locked.get(pid)
        if before is None:
            problems.append(f"{pid}: new template, not in versions.lock (run `meshpilot eval prompts --update-lock`)")
        elif before["sha256"] != now["sha256"] and before["version"] == now["version"]:
            problems.append(f"{pid}: text changed but version is still {now['version']}; bump `version`")
        elif before != now:
            problems.append(f"{pid}: versions.lock is stale (run `meshpilot eval prompts --update-lock`)")
    problems += [f"{pid}: in versions.lock but no template" for pid in locked.keys() - current.keys()]
    return problems
