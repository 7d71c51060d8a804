"""`meshpilot eval prompts`: each versioned prompt's eval cases, run against a real model endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import prompts
from rag.answers import LLMAnswerer
from rag.chat_models import ChatModel
from rag.retrieval import RetrievedPassage


def _rag_answer_case(model: ChatModel, case: dict[str, Any]) -> tuple[bool, str]:
    passages = [
        RetrievedPassage(
            chunk_id=i,
            product="prompt-eval",
            source=f"case/{i}",
            title=f"passage {i}",
            header_path="",
            text=str(body),
            position=0,
            score=1.0,
            dense=1.0,
            lexical=None,
        )
        for i, body in enumerate(case["passages"], start=1)
    ]
    result = LLMAnswerer(model).answer(str(case["question"]), passages)
    expect = case.get("expect", {})
    answer = result.answer.lower()
    if "grounded" in expect and result.grounded != bool(expect["grounded"]):
        return False, f"grounded is {result.grounded}, expected {expect['grounded']}: {result.answer!r}"
    missing = [n for n in expect.get("cites", []) if n not in {c.chunk_id for c in result.citations}]
    if missing:
        return False, f"does not cite passage(s) {missing}: {result.answer!r}"
    absent = [w for w in expect.get("contains", []) if str(w).lower() not in answer]
    if absent:
        return False, f"answer lacks {absent}: {result.answer!r}"
    present = [w for w in expect.get("not_contains", []) if str(w).lower() in answer]
    if present:
        return False, f"answer contains {present}: {result.answer!r}"
    return True, "ok"


def _copilot_draft_case(model: ChatModel, case: dict[str, Any]) -> tuple[bool, str]:
    from copilot.enrichment import eval_case

    return eval_case(model, case)


RUNNERS: dict[str, Callable[[ChatModel, dict[str, Any]], tuple[bool, str]]] = {
    "rag_answer": _rag_answer_case,
    "copilot_draft": _copilot_draft_case,
}


def run_prompt_suite(model: ChatModel) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for pid in prompts.available():
        template = prompts.load(pid)
        runner = RUNNERS.get(pid)
        cases = []
        for case in template.cases:
            if runner is None:
                cases.append({"name": case.get("name"), "passed": False, "reason": f"no runner for prompt {pid}"})
                continue
            passed, reason = runner(model, case)
            cases.append({"name": case.get("name"), "passed": passed, "reason": reason})
        report[pid] = {"version": template.version, "owner": template.owner, "cases": cases}
    passed = all(c["passed"] for p in report.values() for c in p["cases"])
    return {"model": model.model_id, "prompts": report, "passed": passed, "lock_problems": prompts.lock_problems()}
