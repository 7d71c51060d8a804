"""Ingestion-time scan of chunks for planted instructions (indirect prompt injection).

Threat model: anyone who can edit a document a knowledge product is built from (a wiki page, a
contract, a runbook) can plant instructions for the model that will read it as context. Each chunk
is scanned once, when it is ingested, with the same detector as questions (every reading of the
text: case, zero-width characters, homoglyphs, encodings); its verdict is stored with the chunk and
the detector's fingerprint. At question time the context guard trusts a verdict of the current
detector and scans again anything else, so a detector update never leaves old chunks unchecked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt

from rag.database import Database
from rag.guards.injection import InjectionDetector

_DETECTOR_FILES = ("injection.py", "normalize.py", "allowlist.yaml")


@cache
def detector_fingerprint() -> str:
    """Changes whenever the detector's code, patterns, allowlist or trained artifacts change."""
    digest = hashlib.sha256()
    package = resources.files("rag.guards")
    for name in _DETECTOR_FILES:
        digest.update(package.joinpath(name).read_bytes())
    artifacts = package.joinpath("artifacts")
    for item in sorted(artifacts.iterdir(), key=lambda p: p.name):
        if item.is_file():
            digest.update(item.name.encode() + item.read_bytes())
    return digest.hexdigest()[:16]


def chunk_flags(
    detector: InjectionDetector, texts: Sequence[str], vectors: npt.NDArray[np.float32] | None = None
) -> list[list[str]]:
    """What each chunk carries: [] when nothing, else the detector's categories (its document patterns,
    then its document head on the chunk's embedding when there is one)."""
    verdicts = detector.check_chunks(texts, vectors)
    return [v.categories if v.flagged else [] for v in verdicts]


@cache
def default_detector() -> InjectionDetector:
    return InjectionDetector.default()


def rescan(
    db: Database,
    batch: int = 500,
    progress: Callable[[int, int], None] | None = None,
    products: Sequence[str] | None = None,
) -> dict[str, object]:
    """Take the current detector's verdict of every chunk that lacks one (older rows, a new detector).

    Batches commit on their own: an interrupted run keeps what it did, and the next one goes on.
    `products` (names) limits it to those products' chunks."""
    from sqlalchemy import text

    detector, fingerprint = default_detector(), detector_fingerprint()
    stale = "guard_detector IS DISTINCT FROM :f"
    params: dict[str, object] = {"f": fingerprint}
    if products is not None:
        stale += " AND product_id IN (SELECT id FROM knowledge_products WHERE name = ANY(:products))"
        params["products"] = list(products)
    with db.engine.connect() as conn:
        total = int(conn.execute(text(f"SELECT count(*) FROM chunks WHERE {stale}"), params).scalar_one())
    done = flagged = 0
    while True:
        with db.transaction() as conn:
            rows = conn.execute(
                text(
                    f"SELECT id, text, embedding FROM chunks WHERE {stale} ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                ),
                {**params, "n": batch},
            ).all()
            if not rows:
                break
            vectors = np.stack([np.asarray(r.embedding.to_numpy(), dtype=np.float32) for r in rows])
            flags = chunk_flags(detector, [r.text for r in rows], vectors)
            conn.execute(
                text("UPDATE chunks SET guard_flags = :g, guard_detector = :f WHERE id = :i"),
                [{"g": f, "f": fingerprint, "i": r.id} for r, f in zip(rows, flags, strict=True)],
            )
        done += len(rows)
        flagged += sum(bool(f) for f in flags)
        if progress:
            progress(done, total)
    return {"scanned": done, "flagged": flagged, "detector": fingerprint}
