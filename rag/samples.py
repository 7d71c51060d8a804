"""The bundled sample knowledge base (a fictional company's mesh), used by the demo, evals and tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rag.database import Database
from rag.documents import MANIFEST
from rag.embeddings import Embedder
from rag.errors import MeshpilotError
from rag.ingestion import IngestReport, ProgressFn, ingest_directory
from rag.products import spec_from_manifest
from rag.settings import Settings


def sample_knowledge_dir() -> Path:
    path = Path(str(resources.files("rag").joinpath("sample_knowledge")))
    if not path.is_dir():
        raise MeshpilotError(f"the bundled sample knowledge base is missing at {path}")
    return path


def product_dirs(root: Path | None = None) -> list[Path]:
    root = root or sample_knowledge_dir()
    return sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())


def ingest_samples(
    db: Database,
    settings: Settings,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
    root: Path | None = None,
) -> list[IngestReport]:
    return [
        ingest_directory(db, settings, spec_from_manifest(d), d, embedder=embedder, progress=progress)
        for d in product_dirs(root)
    ]
