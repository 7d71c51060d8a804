"""The copilot's tool allowlist: reads any time, the one write only after approval, nothing else ever."""

from __future__ import annotations

import pytest

from copilot.tools import READ_ONLY_TOOLS, ToolNotAllowed, authorize


@pytest.mark.parametrize("tool", sorted(READ_ONLY_TOOLS))
def test_read_only_tools_are_allowed_before_approval(tool: str) -> None:
    authorize(tool, {})


@pytest.mark.parametrize("state", [{}, {"approved": False}, {"approved": "yes"}, {"approved": 1}])
def test_publish_needs_an_explicit_approval(state: dict[str, object]) -> None:
    with pytest.raises(ToolNotAllowed, match="approval"):
        authorize("publish", state)
    authorize("publish", {"approved": True})


@pytest.mark.parametrize("tool", ["run_shell", "write_file", "Publish", "http_request", ""])
def test_tools_off_the_allowlist_are_refused_even_when_approved(tool: str) -> None:
    with pytest.raises(ToolNotAllowed, match="allowlist"):
        authorize(tool, {"approved": True})
