"""Validation: the mandatory checks on a data-product folder, drafted or hand-edited.

Official ODCS JSON Schema, policy-as-code, sqlglot read-only guard, a dry run of the pipeline on the
data, the generated tests executed in a subprocess with a time limit, output guards. Every result is
a `Check` in one `ValidationReport`; nothing raises for a bad product.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml

from copilot.contracts import CONTRACT_FILE
from copilot.output_guard import check_outputs
from copilot.pipelines import MANIFEST_FILE
from copilot.policies import check_policies
from copilot.reports import Check, ValidationReport
from copilot.sql_guard import check_read_only

TESTS_TIMEOUT_S = 120.0
TEXT_SUFFIXES = {".yaml", ".yml", ".sql", ".py", ".md", ".json"}


@cache
def odcs_schema() -> dict[str, Any]:
    """The official ODCS JSON Schema as shipped by the `open-data-contract-standard` package."""
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_errors(contract: Any, schema: dict[str, Any] | None = None) -> list[str]:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    schema = schema or odcs_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(contract), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}" for e in errors]


def read_text_files(folder: Path) -> dict[str, str]:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in rel and rel != "validation.json":
            files[rel] = path.read_text(encoding="utf-8", errors="replace")
    return files


def validate_folder(
    folder: Path, *, personal_samples: list[str] | None = None, location: Path | None = None
) -> ValidationReport:
    """Validate `folder`; `location` is where it will be published when `folder` is a scratch copy
    (relative source paths resolve from there)."""
    report = ValidationReport()
    started = time.perf_counter()
    folder = Path(folder)
    contract_path = folder / CONTRACT_FILE
    if not contract_path.is_file():
        report.add("contract_present", False, f"{CONTRACT_FILE} is missing in {folder}")
        return report
    contract = _load_mapping(contract_path, "contract_yaml", report)
    if contract is None:
        return report
    errors = schema_errors(contract)
    report.add("odcs_json_schema", not errors, "; ".join(errors[:3]) or "valid against ODCS v3.1.0 JSON Schema")
    report.extend(check_policies(contract))
    report.timings_ms["contract"] = (time.perf_counter() - started) * 1000

    t = time.perf_counter()
    manifest = _load_manifest(folder, report)
    sql_files = sorted(p for p in folder.rglob("*.sql"))
    for path in sql_files:
        check = check_read_only(path.read_text(encoding="utf-8"), f"sql_read_only:{path.relative_to(folder)}")
        report.checks.append(check)
    for item in (manifest or {}).get("inputs") or []:
        if item.get("relation"):
            report.checks.append(
                check_read_only(f"SELECT * FROM {item['relation']}", f"sql_read_only:input:{item['name']}")
            )
    if manifest is not None and all(c.passed for c in report.checks if c.name.startswith("sql_read_only")):
        report.checks.append(_dry_run(folder, manifest, contract, location or folder))
    report.timings_ms["sql"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    if manifest is not None and _has_data(manifest):
        report.checks.append(_run_tests(folder, location or folder))
    report.timings_ms["tests"] = (time.perf_counter() - t) * 1000

    report.extend(check_outputs(read_text_files(folder), contract, personal_samples or []))
    return report


def _load_mapping(path: Path, check: str, report: ValidationReport) -> dict[str, Any] | None:
    """A YAML file that must hold a mapping; a failure becomes the failed check `check`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        report.add(check, False, f"invalid YAML: {str(exc).splitlines()[0]}")
        return None
    if not isinstance(data, dict):
        report.add(check, False, f"{path.name} is not a YAML mapping")
        return None
    return data


def _load_manifest(folder: Path, report: ValidationReport) -> dict[str, Any] | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        report.add("pipeline_manifest", False, f"{MANIFEST_FILE} is missing")
        return None
    manifest = _load_mapping(path, "pipeline_manifest", report)
    if manifest is None:
        return None
    if not manifest.get("models"):
        report.add("pipeline_manifest", False, "the manifest names no model")
        return None
    report.add(
        "pipeline_manifest", True, f"{len(manifest['models'])} model(s), {len(manifest.get('inputs') or [])} input(s)"
    )
    return manifest


def _has_data(manifest: dict[str, Any]) -> bool:
    return all(i.get("relation") for i in manifest.get("inputs") or [])


def _dry_run(folder: Path, manifest: dict[str, Any], contract: dict[str, Any], location: Path) -> Check:
    """Run each model on the data; its columns must be the contract's properties, in order."""
    if not _has_data(manifest):
        return Check("pipeline_dry_run", True, "skipped: the source has no rows (DDL)")
    try:
        with duckdb.connect() as con:
            # Relative input paths are relative to the product folder.
            con.execute(f"SET file_search_path = '{str(location.resolve()).replace(chr(39), chr(39) * 2)}'")
            for item in manifest["inputs"]:
                con.execute(f"CREATE VIEW {item['name']} AS SELECT * FROM {item['relation']}")
            details = {}
            for model in manifest["models"]:
                sql = (folder / "pipeline" / model["sql"]).read_text(encoding="utf-8")
                described = con.execute(f"DESCRIBE SELECT * FROM ({sql.strip().rstrip(';')}) AS m").fetchall()
                rows = con.execute(f"SELECT count(*) FROM ({sql.strip().rstrip(';')}) AS m").fetchall()[0][0]
                details[model["name"]] = {"rows": rows, "columns": [r[0] for r in described]}
    except duckdb.Error as exc:
        return Check("pipeline_dry_run", False, f"the pipeline fails on the data: {str(exc).splitlines()[0]}")
    expected = [p["name"] for obj in contract.get("schema") or [] for p in obj.get("properties") or []]
    produced = [c for d in details.values() for c in d["columns"]]
    if produced != expected:
        missing = [c for c in expected if c not in produced]
        unknown = [c for c in produced if c not in expected]
        return Check(
            "pipeline_dry_run",
            False,
            f"the pipeline's columns differ from the contract (missing {missing}, not in contract {unknown})",
            details,
        )
    rows = sum(d["rows"] for d in details.values())
    return Check("pipeline_dry_run", True, f"ran on the data: {rows} rows, columns match the contract", details)


def _run_tests(folder: Path, location: Path) -> Check:
    tests = sorted((folder / "tests").glob("test_*.py"))
    if not tests:
        return Check("tests_executed", False, "no tests/test_*.py")
    outputs = []
    for test in tests:
        try:
            done = subprocess.run(
                [sys.executable, str(test)],
                capture_output=True,
                text=True,
                timeout=TESTS_TIMEOUT_S,
                cwd=folder,
                env={**os.environ, "MESHPILOT_PRODUCT_DIR": str(location.resolve())},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Check("tests_executed", False, f"{test.name} ran past {TESTS_TIMEOUT_S:.0f} s")
        out = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            tail = "; ".join(out.splitlines()[-5:]) if out else f"exit {done.returncode}"
            return Check("tests_executed", False, f"{test.name} failed: {tail}")
        outputs.append(out.splitlines()[-1] if out else "")
    return Check("tests_executed", True, "; ".join(outputs))
