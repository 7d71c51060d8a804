"""Imports point down only: prompts < rag < copilot < evals < serving (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["prompts", "rag", "copilot", "evals", "serving"]
# What each package may import from the project (besides itself).
ALLOWED = {
    "prompts": set(),
    "rag": {"prompts"},
    "copilot": {"prompts", "rag"},
    "evals": {"prompts", "rag", "copilot"},
    "serving": {"prompts", "rag", "copilot", "evals"},
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in LAYERS}
    return found


def violations() -> list[str]:
    bad = []
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            for imported in project_imports(path) - ALLOWED[package] - {package}:
                bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    return bad


def test_no_package_imports_a_higher_layer() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    offender = tmp_path / "x.py"
    offender.write_text("from serving.cli import app\nimport rag.answers\n")
    assert project_imports(offender) == {"serving", "rag"}
