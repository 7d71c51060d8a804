"""The graph's nodes: each takes the state (and the runtime context) and returns a partial state.

Tools on an allowlist: until the approve node has passed, nodes only read (the source, the knowledge
base, a scratch folder for validation); `publish` is the one node that writes, and only when approved.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from copilot.drafts import build_draft, write_files
from copilot.enrichment import ask_model, parse_reply
from copilot.pipelines import MANIFEST_FILE
from copilot.profiles import Profile, profile_source
from copilot.publishing import check_out_dir, publish
from copilot.reports import Check, ValidationReport
from copilot.requests import DraftRequest
from copilot.sources import DdlColumn, Source, open_source
from copilot.standards import Standards
from copilot.state import MAX_REVISIONS, Context, State
from copilot.tools import authorize
from copilot.validation import validate_folder


def _request(state: State) -> DraftRequest:
    return DraftRequest(state["data"], state["name"], state["domain"], state["owner"])


def _source(state: State) -> Source:
    data = dict(state["source"])
    data["path"] = Path(data["path"])
    data["ddl_columns"] = [DdlColumn(**c) for c in data.get("ddl_columns") or []]
    return Source(**data)


def _timed(runtime: Runtime[Context], stage: str, started: float) -> None:
    runtime.context.timings_ms[stage] = (
        runtime.context.timings_ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000
    )


def profile(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    started = time.perf_counter()
    _request(state)  # bad --name/--domain/--owner fail before any work
    check_out_dir(Path(state["out"]))
    authorize("open_source", state)
    source = open_source(Path(state["data"]))
    if state.get("origin"):
        source = dataclasses.replace(source, origin=state["origin"])
    authorize("profile_source", state)
    result = profile_source(source)
    _timed(runtime, "profile", started)
    as_dict = dataclasses.asdict(source)
    as_dict["path"] = str(source.path)
    return {"source": as_dict, "profile": result.to_dict(), "revisions": 0}


def retrieve_standards(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    started = time.perf_counter()
    authorize("retrieve_standards", state)
    standards = runtime.context.get_standards()
    _timed(runtime, "standards", started)
    return {"standards": standards.to_dict()}


def _draft(state: State, runtime: Runtime[Context], feedback: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    request, source = _request(state), _source(state)
    prof, standards = Profile.from_dict(state["profile"]), Standards.from_dict(state["standards"])
    update: dict[str, Any] = {}
    enrichment: dict[str, Any] = {}
    if runtime.context.chat_model is not None:
        authorize("ask_model", state)
        reply = ask_model(runtime.context.chat_model, request.product_id, request.table, prof, standards, feedback)
        enrichment, checks = parse_reply(reply, prof, request.table)
        update["model_checks"] = [dataclasses.asdict(c) for c in checks]
        update["enrichment"] = enrichment
    files = build_draft(
        request,
        source,
        prof,
        standards,
        Path(state["out"]),
        descriptions=enrichment.get("descriptions"),
        extra_rules=enrichment.get("rules"),
        purpose=enrichment.get("purpose"),
    )
    _timed(runtime, "draft", started)
    return {**update, "files": files}


def draft(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    return _draft(state, runtime, [])


def validate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    started = time.perf_counter()
    prof = Profile.from_dict(state["profile"])
    # Sample values of personal columns must not show up in the card or examples.
    samples = [v for c in prof.columns if c.personal for v in (c.min_value, c.max_value) if v]
    with tempfile.TemporaryDirectory(prefix="meshpilot-validate-") as scratch:
        write_files(Path(scratch), state["files"])
        authorize("validate_folder", state)
        report = validate_folder(Path(scratch), personal_samples=samples, location=Path(state["out"]))
    report.checks[:0] = [Check(**c) for c in state.get("model_checks") or []]
    for stage, ms in report.timings_ms.items():
        runtime.context.timings_ms[f"validate.{stage}"] = runtime.context.timings_ms.get(f"validate.{stage}", 0) + ms
    _timed(runtime, "validate", started)
    return {"report": report.to_dict()}


def revise(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    failures = ValidationReport.from_dict(state["report"]).feedback()
    update = _draft(state, runtime, [*state.get("feedback", []), *failures])
    return {**update, "feedback": failures, "revisions": state.get("revisions", 0) + 1}


def give_up(state: State) -> dict[str, Any]:
    report = ValidationReport.from_dict(state["report"])
    revisions = state.get("revisions", 0)
    why = "no model is configured to revise it" if revisions == 0 else f"still invalid after {revisions} revision(s)"
    first = report.failures[0] if report.failures else None
    detail = f"; first failure: {first.name}: {first.reason}" if first else ""
    return {"status": "invalid", "message": f"draft not valid ({why}); nothing was written{detail}"}


def approve(state: State) -> dict[str, Any]:
    if state.get("auto_approve"):
        return {"approved": True}
    report = ValidationReport.from_dict(state["report"])
    decision = interrupt(
        {
            "question": f"Publish the valid draft of {state['name']} to {state['out']}?",
            "artifacts": sorted(state["files"]),
            "checks": len(report.checks),
        }
    )
    approved = decision is True or (isinstance(decision, dict) and bool(decision.get("approved")))
    if not approved:
        return {"approved": False, "status": "rejected", "message": "not approved; nothing was written"}
    return {"approved": True}


def publish_node(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    authorize("publish", state)  # the write tool is off the allowlist until approval
    started = time.perf_counter()
    import yaml

    report = ValidationReport.from_dict(state["report"])
    manifest = yaml.safe_load(state["files"][MANIFEST_FILE])
    artifacts = publish(Path(state["out"]), state["files"], report.to_json(), manifest)
    _timed(runtime, "publish", started)
    return {
        "artifacts": artifacts,
        "status": "published",
        "message": f"published {len(artifacts)} files to {state['out']}",
    }


def after_validate(state: State, runtime: Runtime[Context]) -> Literal["approve", "revise", "give_up"]:
    if ValidationReport.from_dict(state["report"]).valid:
        return "approve"
    # Only a model can act on feedback; the deterministic drafters would write the same draft again.
    if runtime.context.chat_model is not None and state.get("revisions", 0) < MAX_REVISIONS:
        return "revise"
    return "give_up"


def after_approve(state: State) -> Literal["publish", "__end__"]:
    return "publish" if state.get("approved") else "__end__"
