from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.rag_suite import Judge, load_thresholds, run_rag_suite
from evals.reports import write_suite
from rag.settings import Settings
from tests.conftest import run_cli
from tests.openai_server import OpenAITestServer


@pytest.fixture(scope="module")
def offline_result(db: Any, settings: Settings, embedder: Any, samples: Any) -> dict[str, Any]:
    return run_rag_suite(db, settings, embedder)


def test_offline_suite_scores_every_metric_and_passes_its_gates(offline_result: dict[str, Any]) -> None:
    metrics = offline_result["metrics"]
    for name in ("id_context_precision", "id_context_recall", "rouge_l", "string_similarity"):
        assert metrics[name] is not None and 0 <= metrics[name] <= 1, name
    assert set(offline_result["thresholds"]) == set(load_thresholds())
    assert offline_result["passed"], offline_result["gates"]
    assert offline_result["questions"] == len(offline_result["cases"]) >= 40
    unanswerable = [c for c in offline_result["cases"] if not c["answerable"]]
    assert len(unanswerable) >= 8 and all(c["reference_ids"] == [] for c in unanswerable)
    answerable = [c for c in offline_result["cases"] if c["answerable"]]
    assert all(c["reference_ids"] for c in answerable), "every golden quote maps to a stored chunk"


def test_a_gate_fails_when_the_metric_misses_it(offline_result: dict[str, Any], tmp_path: Path) -> None:
    gates = {**offline_result["gates"], "rouge_l": {"value": 0.1, "bound": 0.4, "passed": False}}
    result = {**offline_result, "gates": gates, "passed": False}
    paths = write_suite(tmp_path, "rag", "eval", result, [])
    junit = ET.parse(tmp_path / "rag.junit.xml").getroot().find("testsuite")
    assert junit is not None and junit.get("failures") == "1"
    assert [p.name for p in paths] == ["rag.json", "rag.junit.xml", "rag.png", "rag.md"]
    assert (tmp_path / "rag.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "rag.md").read_text()
    assert "**FAILED**" in markdown and "| rouge_l | 0.1000 | >= 0.4 | **no** |" in markdown


def test_cli_eval_rag_writes_reports_and_gates_the_exit_code(cli_env: Path, tmp_path: Path, samples: Any) -> None:
    code, out, err = run_cli("eval", "rag", "--json", "--report-dir", str(tmp_path))
    assert code == 0, err
    result = json.loads(out)
    assert {"metrics", "thresholds", "passed", "cases"} <= result.keys()
    assert {p.name for p in tmp_path.iterdir()} == {"rag.json", "rag.junit.xml", "rag.png", "rag.md"}


def ragas_judge(messages: list[dict[str, Any]]) -> str:
    """Answers each kind of Ragas prompt with well-formed JSON, as a cooperative judge model would."""
    prompt = " ".join(str(m.get("content")) for m in messages)
    if "judge the faithfulness of a series of statements" in prompt:
        return json.dumps({"statements": [{"statement": "s", "reason": "in the context", "verdict": 1}]})
    if "Break down each sentence into one or more fully understandable statements" in prompt:
        return json.dumps({"statements": ["The answer states a fact from the context."]})
    if "Generate a question for the given answer" in prompt:
        return json.dumps({"question": "How often must batch data products be refreshed?", "noncommittal": 0})
    if "verify if the context was useful in arriving at the given answer" in prompt:
        return json.dumps({"reason": "it states the answer", "verdict": 1})
    return "{}"


@pytest.fixture
def judge_server() -> Iterator[OpenAITestServer]:
    server = OpenAITestServer()
    server.responder = ragas_judge
    yield server
    server.close()


@pytest.mark.slow
def test_judge_metrics_through_an_openai_protocol_server(
    db: Any, settings: Settings, embedder: Any, samples: Any, judge_server: OpenAITestServer
) -> None:
    result = run_rag_suite(db, settings, embedder, judge=Judge(judge_server.base_url, "judge-model"))
    metrics = result["metrics"]
    assert metrics["faithfulness"] == 1.0
    assert (
        metrics["llm_context_precision_with_reference"] is not None
        and metrics["llm_context_precision_with_reference"] > 0.9
    )
    assert metrics["answer_relevancy"] is not None and 0 < metrics["answer_relevancy"] <= 1
    assert result["judge"] == "judge-model"
    assert any(r["path"].endswith("/chat/completions") for r in judge_server.requests)
    assert all(r["body"]["model"] == "judge-model" for r in judge_server.requests)


def test_cli_eval_rag_exits_1_below_a_gate(
    cli_env: Path, tmp_path: Path, samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = tmp_path / "thresholds.yaml"
    strict.write_text("version: 1\nrag:\n  id_context_recall: 1.01\n")
    monkeypatch.setattr("evals.rag_suite.thresholds_path", lambda: strict)
    code, out, _ = run_cli("eval", "rag", "--report-dir", str(tmp_path / "reports"))
    assert code == 1
    assert "LOW id_context_recall" in out


def test_eval_all_writes_a_combined_report(cli_env: Path, tmp_path: Path, samples: Any) -> None:
    code, out, err = run_cli("eval", "all", "--report-dir", str(tmp_path), "--json")
    assert code == 0, err
    combined = json.loads(out)
    assert combined["passed"] and {"rag", "calibration", "redteam", "copilot"} <= combined["suites"].keys()
    assert combined["suites"]["copilot"]["validity_rate"] == 1.0
    assert json.loads((tmp_path / "all.json").read_text()) == combined
    assert "# meshpilot eval all" in (tmp_path / "all.md").read_text()
    assert (tmp_path / "rag.junit.xml").exists() and (tmp_path / "rag.png").exists()
    assert (tmp_path / "copilot.junit.xml").exists() and (tmp_path / "copilot.md").exists()


def test_eval_copilot_drafts_every_fixture_dataset(cli_env: Path, tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "drafts"
    code, out, err = run_cli("eval", "copilot", "--datasets", str(fixtures), "--report-dir", str(tmp_path), "--json")
    assert code == 0, err + out
    result = json.loads(out)
    assert result["datasets"] == 4 and result["validity_rate"] == 1.0
    assert {"failed_checks_by_kind", "revisions", "cases"} <= result.keys()
    for name in ("copilot.json", "copilot.junit.xml", "copilot.md", "copilot.png"):
        assert (tmp_path / name).exists(), name
    assert "validity_rate" in (tmp_path / "copilot.md").read_text(encoding="utf-8")
