from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_on_a_fresh_home_prints_answers_with_citations(tmp_path: Path) -> None:
    env = {**os.environ, "MESHPILOT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "serving.cli.app", "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "mesh-standards: 8 added" in out
        assert "Batch data products must be refreshed at least every 24 hours [1]." in out
        assert "[1] mesh-standards/slo-defaults.md" in out
        assert "[1] platform-runbooks/oncall-escalation.md" in out
        # The restricted answer reaches the finance caller only.
        sales_part, finance_part = out.split("(groups: sales)")[1].split("(groups: finance)")
        assert "CANARY-FIN-7Q4X-ORCHID" not in sales_part and "I don't know" in sales_part
        assert "CANARY-FIN-7Q4X-ORCHID" in finance_part
    finally:
        from rag.database import stop_embedded

        stop_embedded((tmp_path / "home").resolve() / "pg")
