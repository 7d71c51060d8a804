"""The copilot's tools, on an allowlist. Threat model: excessive agency (OWASP LLM06). A model's reply,
a drafted file or a chat message must never make the copilot act beyond drafting: the graph's nodes
call only the tools named here, read-only ones at any time, the one that writes (`publish`) only
after a person (or `--approve`) approved the valid draft. A model cannot call tools at all: its
reply is parsed as data (copilot/enrichment.py) and anything but descriptions, rules and a purpose
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

READ_ONLY_TOOLS = frozenset({"open_source", "profile_source", "retrieve_standards", "ask_model", "validate_folder"})
WRITE_TOOLS = frozenset({"publish"})


class ToolNotAllowed(PermissionError):
    pass


def authorize(tool: str, state: Mapping[str, Any]) -> None:
    """Raise unless `tool` is on the allowlist and, for a write, the draft was approved."""
    if tool in READ_ONLY_TOOLS:
        return
    if tool in WRITE_TOOLS:
        if state.get("approved") is True:
            return
        raise ToolNotAllowed(f"{tool} writes and needs approval first; nothing was written")
    raise ToolNotAllowed(f"{tool!r} is not on the copilot's tool allowlist")
