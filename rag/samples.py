"""The bundled sample knowledge base (a fictional company's mesh), used by the demo, evals and tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from rag.database import Database
from rag.embeddings import Embedder
from rag.errors import MeshpilotError
from rag.ingestion import IngestReport, ProgressFn, ingest_directory
from rag.products import ProductSpec, parse_groups
from rag.settings import Settings


def sample_knowledge_dir() -> Path:
    path = Path(str(resources.files("rag").joinpath("sample_knowledge")))
    if not path.is_dir():
        raise MeshpilotError(f"the bundled sample knowledge base is missing at {path}")
    return path


def product_dirs(root: Path | None = None) -> list[Path]:
    root = root or sample_knowledge_dir()
    return sorted(p for p in root.iterdir() if (p / "product.yaml").is_file())


def load_spec(product_dir: Path) -> ProductSpec:
    """A product folder's `product.yaml` as a ProductSpec."""
    meta = yaml.safe_load((product_dir / "product.yaml").read_text(encoding="utf-8"))
    return ProductSpec(
        name=meta["name"],
        domain=meta.get("domain"),
        owner=meta.get("owner"),
        classification=meta.get("classification"),
        groups=parse_groups(meta.get("groups") or []),
        version=str(meta["version"]) if meta.get("version") is not None else None,
        description=meta.get("description"),
    )


def ingest_samples(
    db: Database,
    settings: Settings,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
    root: Path | None = None,
) -> list[IngestReport]:
    return [
        ingest_directory(db, settings, load_spec(d), d, embedder=embedder, progress=progress)
        for d in product_dirs(root)
    ]
