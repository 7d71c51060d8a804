"""Golden files: the drafted artifacts of messy test datasets, compared exactly.

Regenerate on purpose only: UPDATE_GOLDEN=1 .venv/bin/pytest tests/copilot/test_golden_drafts.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.copilot.helpers import CASES, FIXTURES, case_data, draft_offline

ARTIFACTS = {
    "datacontract.odcs.yaml": "expected.odcs.yaml",
    "README.md": "expected.README.md",
    "tests/checks.sql": "expected.checks.sql",
    "pipeline/manifest.yaml": "expected.manifest.yaml",
}


def _normalise(text: str, data: Path, out: Path) -> str:
    return text.replace(str(out.resolve()), "{OUT}").replace(str(data.parent.resolve()), "{DATA_DIR}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_drafted_artifacts_match_the_golden_files(case: str, tmp_path: Path) -> None:
    _, name, domain = CASES[case]
    data = case_data(case)
    out = tmp_path / "product"
    files = draft_offline(data, name, domain, out)
    model = next(p for p in files if p.startswith("pipeline/v_"))
    wanted = {**ARTIFACTS, model: "expected.sql"}
    update = os.environ.get("UPDATE_GOLDEN") == "1"
    for artifact, golden in wanted.items():
        if artifact not in files:
            assert artifact == "tests/checks.sql" and case.endswith("_ddl"), f"{artifact} missing"
            continue
        got = _normalise(files[artifact], data, out)
        path = FIXTURES / case / golden
        if update:
            path.write_text(got, encoding="utf-8")
        assert path.is_file(), f"no golden file {path}; regenerate on purpose with UPDATE_GOLDEN=1"
        assert got == path.read_text(encoding="utf-8"), f"{case}/{artifact} differs from {golden}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_drafted_case_is_valid(case: str, tmp_path: Path) -> None:
    from copilot.drafts import write_files
    from copilot.validation import validate_folder

    _, name, domain = CASES[case]
    files = draft_offline(case_data(case), name, domain, tmp_path / "product")
    with tempfile.TemporaryDirectory() as scratch:
        write_files(Path(scratch), files)
        report = validate_folder(Path(scratch))
    assert report.valid, report.feedback()
