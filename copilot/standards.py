"""Standards: the mesh's own rules (SLOs, classification, support, quality), retrieved with citations.

They come from the knowledge product `mesh-standards` through the RAG service, so the product card can
say where each rule came from. Numbers are read from the cited sentences; where a sentence does not
state one, the documented default stays and the card says it was not cited.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.database import Database
from rag.embeddings import Embedder
from rag.settings import Settings

STANDARDS_PRODUCT = "mesh-standards"
QUESTIONS = {
    "freshness": "How often must batch data products be refreshed?",
    "retention": "How long is data in published tables retained by default?",
    "availability": "What availability must Tier 1 and Tier 2 data products have?",
    "classification": "Which classification must personal data such as email addresses and phone numbers have?",
    "support": "Which support channel must every product name in its data contract?",
    "quality": "Which quality rules must every published table have?",
    "naming": "Which case and characters must all identifiers such as column names use?",
    "contract": "Which ODCS version must every data contract be written in?",
}


@dataclass(frozen=True)
class StandardCitation:
    topic: str
    product: str
    source: str
    quote: str


@dataclass
class Standards:
    freshness_hours: int = 24
    retention_years: int = 3
    availability_pct: float = 99.5
    personal_data_floor: str = "confidential"
    citations: list[StandardCitation] = field(default_factory=list)

    def cited(self, topic: str) -> StandardCitation | None:
        return next((c for c in self.citations if c.topic == topic), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standards:
        return cls(**{**data, "citations": [StandardCitation(**c) for c in data.get("citations", [])]})


def ensure_standards_product(db: Database, settings: Settings, embedder: Embedder) -> None:
    """Ingest the bundled `mesh-standards` when the database has no such product yet (a fresh home)."""
    from rag.products import get_product, spec_from_manifest
    from rag.samples import sample_knowledge_dir

    with db.transaction() as conn:
        present = get_product(conn, STANDARDS_PRODUCT) is not None
    if not present:
        from rag.ingestion import ingest_directory

        folder = sample_knowledge_dir() / STANDARDS_PRODUCT
        ingest_directory(db, settings, spec_from_manifest(folder), folder, embedder=embedder)


def retrieve_standards(db: Database, settings: Settings, embedder: Embedder) -> Standards:
    """Ask the RAG service one question per topic; keep the best citation of each grounded answer."""
    # The offline answerer: standards must be quotes, never a model's paraphrase.
    from rag.answers import ExtractiveAnswerer
    from rag.service import RagService

    service = RagService.build(settings, db, embedder=embedder)
    service.answerer = ExtractiveAnswerer()
    standards = Standards()
    for topic, question in QUESTIONS.items():
        answer = service.ask(question, groups=[], product=STANDARDS_PRODUCT)
        if not answer.grounded or not answer.citations:
            continue
        best = answer.citations[0]
        standards.citations.append(StandardCitation(topic, best.product, best.source, best.quote.strip()))
    return apply_citations(standards)


def apply_citations(standards: Standards) -> Standards:
    """Read the numbers from what the standards say."""
    if (c := standards.cited("freshness")) and (m := re.search(r"every (\d+) hours", c.quote)):
        standards.freshness_hours = int(m.group(1))
    if (c := standards.cited("retention")) and (m := re.search(r"(\d+) years", c.quote)):
        standards.retention_years = int(m.group(1))
    if (c := standards.cited("availability")) and (m := re.search(r"(\d+(?:\.\d+)?) ?%", c.quote)):
        standards.availability_pct = float(m.group(1))
    return standards
