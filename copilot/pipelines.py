"""Pipelines: the SQL model that publishes the product from its source, its manifest and its lineage.

The model reads one relation, `raw` (bound by the manifest to the source file), and only selects:
typed casts, null markers as NULL, names from the naming standard.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import yaml

from copilot.profiles import ColumnProfile, Profile, clean_expr
from copilot.requests import DraftRequest
from copilot.sources import Source

PIPELINE_DIR = "pipeline"
MANIFEST_FILE = "pipeline/manifest.yaml"
LINEAGE_FILE = "pipeline/lineage.json"
PRODUCER = "https://github.com/meshpilot/meshpilot/copilot"
_CASTS = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def model_name(request: DraftRequest) -> str:
    return f"v_{request.table}"


def typed_expr(col: ColumnProfile) -> str:
    text = clean_expr(col.source_name)
    if col.logical_type == "boolean":
        return f"CAST(lower({text}) AS BOOLEAN)"
    if col.logical_type in _CASTS:
        return f"CAST({text} AS {_CASTS[col.logical_type]})"
    return text


def draft_model_sql(request: DraftRequest, profile: Profile) -> str:
    lines = [
        f"-- {model_name(request)}: publishes {request.product_id} from `raw` (see manifest.yaml). Read-only.",
        "SELECT",
    ]
    items = [f"    {typed_expr(c)} AS {c.name}" for c in profile.columns]
    lines.append(",\n".join(items))
    lines.append("FROM raw")
    return "\n".join(lines) + "\n"


def source_path_text(source: Source, out: Path) -> str:
    """The source as the product folder should name it: relative when both live in one tree (a repository),
    so CI can validate the folder on another machine; absolute otherwise."""
    out = Path(out).resolve()
    tree = next((p for p in out.parents if (p / ".git").exists()), out.parent)
    if source.path.is_relative_to(tree):
        return os.path.relpath(source.path, out)
    return str(source.path)


def draft_manifest(request: DraftRequest, source: Source, published: str, out: Path) -> dict[str, Any]:
    path_text = source_path_text(source, out)
    return {
        "product": request.product_id,
        "address": request.address,
        "inputs": [
            {
                "name": "raw",
                "path": path_text,
                "format": source.format,
                "relation": source.relation_sql(path_text) if source.has_data else None,
            }
        ],
        "models": [{"name": model_name(request), "sql": f"{model_name(request)}.sql", "reads": ["raw"]}],
        "outputs": [{"name": request.table, "model": model_name(request), "path": published, "format": "parquet"}],
    }


def manifest_yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=float("inf"))


def draft_lineage(request: DraftRequest, source: Source, profile: Profile, published: str) -> str:
    """An OpenLineage COMPLETE run event: source file in, published table out, with the output schema."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import schema_dataset
    from openlineage.client.serde import Serde

    fields = [schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.logical_type) for c in profile.columns]
    # Deterministic ids and time, so a re-draft of the same data yields the same file (golden tests).
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request.address}/{source.path}"))
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="1970-01-01T00:00:00Z",
        run=Run(runId=run_id),
        job=Job(namespace=f"meshpilot.{request.domain}", name=model_name(request)),
        producer=PRODUCER,
        inputs=[InputDataset(namespace="file", name=str(source.path))],
        outputs=[
            OutputDataset(
                namespace="file",
                name=published,
                facets={"schema": schema_dataset.SchemaDatasetFacet(fields=fields)},
            )
        ],
    )
    return json.dumps(json.loads(Serde.to_json(event)), indent=2, sort_keys=True) + "\n"
