"""Runs: one draft thread through the graph, started or resumed, summarised for the CLI and the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from copilot.errors import UsageError
from copilot.graph import GRAPH_NAME, builder
from copilot.reports import ValidationReport
from copilot.state import Context, InputState


@dataclass
class DraftRun:
    thread: str
    status: str
    valid: bool
    revisions: int
    artifacts: list[str]
    checks: list[dict[str, Any]]
    message: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """The current draft (artifact path -> text), for callers that show it; not in `to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "revisions": self.revisions,
            "artifacts": self.artifacts,
            "checks": self.checks,
            "status": self.status,
            "thread": self.thread,
            "message": self.message,
        }


def _summary(thread: str, result: dict[str, Any], context: Context) -> DraftRun:
    report = ValidationReport.from_dict(result.get("report") or {})
    if "__interrupt__" in result:
        status, message = (
            "awaiting_approval",
            f"valid draft awaits approval: meshpilot draft --thread {thread} --approve",
        )
    else:
        status, message = result.get("status", "invalid"), result.get("message", "")
    return DraftRun(
        thread=thread,
        status=status,
        valid=report.valid,
        revisions=int(result.get("revisions") or 0),
        artifacts=list(result.get("artifacts") or []),
        checks=report.summary(),
        message=message,
        timings_ms=dict(context.timings_ms),
        files=dict(result.get("files") or {}),
    )


def start(
    inputs: InputState, context: Context, checkpointer: BaseCheckpointSaver[Any], thread: str | None = None
) -> DraftRun:
    graph = builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
    thread = thread or uuid.uuid4().hex
    config: Any = {"configurable": {"thread_id": thread}}
    result = graph.invoke(inputs, config, context=context)
    return _summary(thread, result, context)


def current(thread: str, checkpointer: BaseCheckpointSaver[Any]) -> DraftRun:
    """The thread as it stands, without running anything."""
    graph = builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
    snapshot = graph.get_state({"configurable": {"thread_id": thread}})
    if not snapshot.values:
        raise UsageError(f"no draft thread {thread!r}")
    values = dict(snapshot.values)
    if snapshot.interrupts:
        values["__interrupt__"] = list(snapshot.interrupts)
    return _summary(thread, values, Context())


def resume(thread: str, approved: bool, context: Context, checkpointer: BaseCheckpointSaver[Any]) -> DraftRun:
    graph = builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
    config: Any = {"configurable": {"thread_id": thread}}
    snapshot = graph.get_state(config)
    if not snapshot.values:
        raise UsageError(f"no draft thread {thread!r}")
    if not snapshot.interrupts:
        return _summary(thread, dict(snapshot.values), context)
    result = graph.invoke(Command(resume={"approved": approved}), config, context=context)
    return _summary(thread, result, context)
