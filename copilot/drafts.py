"""Drafts: every artifact of a data product as text, keyed by its path in the product folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from copilot.cards import CARD_FILE, draft_card
from copilot.contracts import CONTRACT_FILE, contract_yaml, draft_contract
from copilot.pipelines import LINEAGE_FILE, MANIFEST_FILE, draft_lineage, draft_manifest, draft_model_sql, manifest_yaml
from copilot.pipelines import model_name as pipeline_model_name
from copilot.profiles import Profile
from copilot.quality_tests import CHECKS_FILE, checks_sql, contract_checks, draft_test_file, test_file_name
from copilot.requests import DraftRequest
from copilot.sources import Source
from copilot.standards import Standards

Files = dict[str, str]


def published_path(out: Path, request: DraftRequest) -> str:
    return str(Path(out).resolve() / "data" / f"{request.table}.parquet")


def build_draft(
    request: DraftRequest,
    source: Source,
    profile: Profile,
    standards: Standards,
    out: Path,
    *,
    descriptions: dict[str, str] | None = None,
    extra_rules: dict[str, list[dict[str, Any]]] | None = None,
    purpose: str | None = None,
) -> Files:
    """The deterministic drafters, plus whatever the model contributed (already checked for shape)."""
    published = published_path(out, request)
    contract = draft_contract(request, profile, standards, published, descriptions, extra_rules)
    if purpose:
        contract["description"]["purpose"] = purpose
    model = pipeline_model_name(request)
    manifest = draft_manifest(request, source, published, out)
    files: Files = {
        CONTRACT_FILE: contract_yaml(contract),
        f"pipeline/{model}.sql": draft_model_sql(request, profile),
        MANIFEST_FILE: manifest_yaml(manifest),
        CARD_FILE: draft_card(request, profile, contract, standards),
    }
    if source.has_data:
        files[LINEAGE_FILE] = draft_lineage(request, source, profile, published)
        files[CHECKS_FILE] = checks_sql(contract_checks(contract))
        relation = manifest["inputs"][0]["relation"]
        files[test_file_name(request.table)] = draft_test_file(
            request.product_id, request.table, relation, f"{model}.sql"
        )
    return files


def write_files(folder: Path, files: Files) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
