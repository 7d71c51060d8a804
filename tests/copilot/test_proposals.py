"""The PR bot on a real git repository: drafts for new data, breaking changes against the base contract,
exit 1 on a breaking change without a major version bump."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import run_cli
from tests.copilot.helpers import case_data, draft_offline


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def make_repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    folder = repo / "products" / "shipments"
    folder.mkdir(parents=True)
    shutil.copyfile(case_data("shipments"), folder / "data.csv")
    files = draft_offline(folder / "data.csv", "shipments", "warehouse_ops", folder)
    (folder / "datacontract.odcs.yaml").write_text(files["datacontract.odcs.yaml"])
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def propose(repo: Path, base: str = "main", head: str = "HEAD") -> tuple[int, dict]:
    code, stdout, stderr = run_cli("propose", "--repo", str(repo), "--base", base, "--head", head, "--json")
    assert stdout, stderr
    return code, json.loads(stdout)


def test_removing_a_column_is_breaking_and_blocks_without_a_major_bump(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    data = repo / "products/shipments/data.csv"
    rows = [line.rsplit(";", 1)[0] for line in data.read_text().splitlines()]  # drop `currency`
    data.write_text("\n".join(rows) + "\n")
    git(repo, "checkout", "-q", "-b", "change")
    git(repo, "commit", "-q", "-am", "drop currency")
    code, result = propose(repo)
    assert code == 1 and result["blocking"] is True
    change = result["files"][0]["changes"][0]
    assert change["kind"] == "column_removed" and change["column"] == "currency"
    assert "Breaking change without a major version bump" in result["comment"]

    contract = repo / "products/shipments/datacontract.odcs.yaml"
    doc = yaml.safe_load(contract.read_text())
    doc["version"] = "2.0.0"
    contract.write_text(yaml.safe_dump(doc, sort_keys=False))
    git(repo, "commit", "-q", "-am", "major bump")
    code, result = propose(repo)
    assert code == 0 and result["breaking"] is True and result["blocking"] is False


def test_contract_edits_type_narrowing_allowed_values_and_new_required_columns(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    path = repo / "products/shipments/datacontract.odcs.yaml"
    doc = yaml.safe_load(path.read_text())
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    props["weight_kg"]["logicalType"] = "integer"
    status_rule = next(q for q in props["status"]["quality"] if q.get("metric") == "invalidValues")
    status_rule["arguments"]["validValues"] = ["delivered", "in_transit"]
    doc["schema"][0]["properties"].append({"name": "carrier_id", "logicalType": "string", "required": True})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    git(repo, "commit", "-q", "-am", "tighten")
    code, result = propose(repo, "HEAD~1", "HEAD")
    kinds = {c["kind"] for c in result["files"][0]["changes"]}
    assert code == 1 and {"type_narrowed", "allowed_values_narrowed", "required_column_added"} <= kinds


def test_a_new_data_file_gets_a_drafted_contract_in_the_comment(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    target = repo / "products/events/data.jsonl"
    target.parent.mkdir(parents=True)
    shutil.copyfile(case_data("events"), target)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "events")
    code, result = propose(repo, "HEAD~1", "HEAD")
    assert code == 0 and result["files"][0]["note"].startswith("no contract yet")
    assert "Proposed contract for <code>products/events/data.jsonl</code>" in result["comment"]
    assert "apiVersion: v3.1.0" in result["comment"]


def test_bad_refs_are_a_clear_usage_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    code, _, stderr = run_cli("propose", "--repo", str(repo), "--base", "nope", "--head", "HEAD")
    assert code == 2 and "git diff" in stderr
