"""Shared by the copilot tests: fixture datasets, offline drafting, the external judge."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "drafts"
EXTERNAL = ROOT.parent / "shared" / "external"
JUDGE = ROOT / ".venv" / "judge" / "bin" / "datacontract"
CASES = {
    "customers_messy": ("data.csv", "customers", "sales"),
    "shipments": ("data.csv", "shipments", "warehouse_ops"),
    "events": ("data.jsonl", "vehicle_events", "fleet"),
    "invoices_ddl": ("data.sql", "invoices", "finance"),
}
OWNER = "owner@lakeshore.example"


def case_data(case: str, tmp: Path | None = None) -> Path:
    """The case's input file; copied under `tmp` when given, so paths in artifacts are the test's own."""
    source = FIXTURES / case / CASES[case][0]
    if tmp is None:
        return source
    target = tmp / "input" / case / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def draft_offline(data: Path, name: str, domain: str, out: Path) -> dict[str, str]:
    """The deterministic drafters with the documented default standards (no database)."""
    from copilot.drafts import build_draft
    from copilot.profiles import profile_source
    from copilot.requests import DraftRequest
    from copilot.sources import open_source
    from copilot.standards import Standards

    source = open_source(data)
    return build_draft(DraftRequest(str(data), name, domain, OWNER), source, profile_source(source), Standards(), out)


def publish_offline(data: Path, name: str, domain: str, out: Path) -> None:
    import yaml

    from copilot.publishing import publish
    from copilot.reports import ValidationReport

    files = draft_offline(data, name, domain, out)
    publish(out, files, ValidationReport().to_json(), yaml.safe_load(files["pipeline/manifest.yaml"]))
