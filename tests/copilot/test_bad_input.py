"""Bad input: one clear line, exit 2, nothing written in --out (checked before any database work)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

CASES = {
    "missing": (None, "no such file"),
    "empty": (b"", "the file is empty"),
    "header_only": (b"id,name\n", "header but no data rows"),
    "ragged": (b"id,name\n1,a\n2,b,extra\n3,c\n", "ragged rows"),
    "not_utf8": (b"id,name\n1,caf\xe9\n2,\xff\xfe\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_with_one_clear_line_and_writes_nothing(case: str, tmp_path: Path, cli_env: Path) -> None:
    content, expected = CASES[case]
    data = tmp_path / f"{case}.csv"
    if content is not None:
        data.write_bytes(content)
    out = tmp_path / "product"
    code, stdout, stderr = run_cli(
        "draft", str(data), "--name", "orders", "--domain", "sales", "--owner", "o@example.com", "--out", str(out)
    )
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".product.*"))  # no staging folder left behind


def test_a_bom_and_a_header_with_spaces_are_fine(tmp_path: Path) -> None:
    from copilot.profiles import profile_source
    from copilot.sources import open_source

    data = tmp_path / "bom.csv"
    data.write_bytes("\ufeffOrder ID,Order Date\n1,2024-01-02\n2,NA\n".encode())
    profile = profile_source(open_source(data))
    assert [c.name for c in profile.columns] == ["order_id", "order_date"]
    assert profile.columns[1].logical_type == "date" and profile.columns[1].nulls == 1


def test_bad_names_are_usage_errors(tmp_path: Path, cli_env: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    code, _, stderr = run_cli(
        "draft",
        str(data),
        "--name",
        "Bad Name",
        "--domain",
        "sales",
        "--owner",
        "o@x.com",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2 and "--name" in stderr
