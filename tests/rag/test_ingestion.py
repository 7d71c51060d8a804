from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import text

from rag.errors import EmbeddingModelMismatch, UsageError
from rag.ingestion import ingest_directory
from rag.products import ProductSpec, get_product
from rag.settings import Settings
from tests.openai_server import OpenAITestServer

DOCS = {
    "standards/naming.md": "# Naming\n\n## Tables\n\nTable names use snake_case.\n",
    "standards/retention.txt": "Retention\n\nRaw data is kept for 400 days.\n",
    "contracts/orders.yaml": "name: orders\ncolumns:\n  - order_id\n",
}


def write_docs(root: Path, docs: dict[str, str]) -> Path:
    for name, body in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root


def counts(report: Any) -> tuple[int, int, int, int]:
    return (report.documents_added, report.documents_updated, report.documents_unchanged, report.documents_deleted)


def stored(db: Any, product: str) -> dict[str, list[str]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.source, c.text FROM documents d JOIN knowledge_products p ON p.id = d.product_id"
                " LEFT JOIN chunks c ON c.document_id = d.id WHERE p.name = :n ORDER BY d.source, c.position"
            ),
            {"n": product},
        ).all()
    out: dict[str, list[str]] = {}
    for source, chunk in rows:
        out.setdefault(source, []).extend([chunk] if chunk else [])
    return out


def test_sync_adds_skips_updates_and_deletes(tmp_path: Path, db: Any, settings: Settings, embedder: Any) -> None:
    root = write_docs(tmp_path, DOCS)
    spec = ProductSpec("sync-test", classification="public")
    first = ingest_directory(db, settings, spec, root, embedder=embedder)
    assert counts(first) == (3, 0, 0, 0)
    assert first.chunks == first.chunks_written == 3

    second = ingest_directory(db, settings, spec, root, embedder=embedder)
    assert counts(second) == (0, 0, 3, 0) and second.chunks_written == 0

    (root / "standards/naming.md").write_text("# Naming\n\n## Columns\n\nTimestamps end with _at.\n")
    (root / "contracts/orders.yaml").unlink()
    third = ingest_directory(db, settings, spec, root, embedder=embedder)
    assert counts(third) == (0, 1, 1, 1)
    assert stored(db, "sync-test") == {
        "standards/naming.md": ["Timestamps end with _at."],
        "standards/retention.txt": ["Retention\n\nRaw data is kept for 400 days."],
    }
    with db.engine.connect() as conn:
        orphans = conn.execute(
            text("SELECT count(*) FROM chunk_terms t LEFT JOIN chunks c ON c.id = t.chunk_id WHERE c.id IS NULL")
        ).scalar_one()
    assert orphans == 0


def test_unreadable_files_are_reported_and_the_rest_ingests(
    tmp_path: Path, db: Any, settings: Settings, embedder: Any
) -> None:
    root = write_docs(tmp_path, {"good.md": "# Good\n\nKept.\n", "later.md": "# Later\n\nFine for now.\n"})
    spec = ProductSpec("skip-test", classification="public")
    ingest_directory(db, settings, spec, root, embedder=embedder)
    (root / "binary.md").write_bytes(b"\x00\x01\x02\x03")
    (root / "later.md").write_bytes(b"\xff\xfe not utf-8 \xff")
    report = ingest_directory(db, settings, spec, root, embedder=embedder)
    assert sorted((s.source, s.reason.split(" ")[0]) for s in report.skipped) == [
        ("binary.md", "binary"),
        ("later.md", "not"),
    ]
    # The stored version of a file that became unreadable is kept, not deleted.
    assert stored(db, "skip-test") == {"good.md": ["Kept."], "later.md": ["Fine for now."]}
    assert counts(report) == (0, 0, 1, 0)


def test_missing_folder_is_a_usage_error(tmp_path: Path, db: Any, settings: Settings, embedder: Any) -> None:
    with pytest.raises(UsageError, match="folder not found"):
        ingest_directory(db, settings, ProductSpec("nope"), tmp_path / "missing", embedder=embedder)
    with db.engine.connect() as conn:
        assert get_product(conn, "nope") is None


def test_metadata_updates_keep_unstated_fields(tmp_path: Path, db: Any, settings: Settings, embedder: Any) -> None:
    root = write_docs(tmp_path, {"a.md": "# A\n\nText.\n"})
    ingest_directory(
        db,
        settings,
        ProductSpec("meta-test", domain="sales", owner="o@example", classification="confidential", groups=["sales"]),
        root,
        embedder=embedder,
    )
    ingest_directory(db, settings, ProductSpec("meta-test", version="2.0.0"), root, embedder=embedder)
    with db.engine.connect() as conn:
        product = get_product(conn, "meta-test")
    assert product is not None
    assert (product.domain, product.owner, product.classification, product.groups, product.version) == (
        "sales",
        "o@example",
        "confidential",
        ["sales"],
        "2.0.0",
    )


def test_another_embedding_model_is_an_error_until_reembed(
    tmp_path: Path, db: Any, settings: Settings, embedder: Any
) -> None:
    root = write_docs(tmp_path, {"a.md": "# A\n\nText one.\n", "b.md": "# B\n\nText two.\n"})
    spec = ProductSpec("model-test", classification="internal", groups=["model-test-only"])
    ingest_directory(db, settings, spec, root, embedder=embedder)
    server = OpenAITestServer(dimension=16)
    try:
        remote = settings.model_copy(update={"embedding_base_url": server.base_url, "embedding_model": "test-embed"})
        from rag.embeddings import OpenAIEmbedder

        other = OpenAIEmbedder(server.base_url, "test-embed", None)
        assert other.dimension == 16
        with pytest.raises(EmbeddingModelMismatch, match="--reembed"):
            ingest_directory(db, remote, spec, root, embedder=other)
        report = ingest_directory(db, remote, spec, root, embedder=other, reembed=True)
        assert counts(report) == (0, 2, 0, 0)
        with db.engine.connect() as conn:
            product = get_product(conn, "model-test")
            dims = (
                conn.execute(
                    text("SELECT DISTINCT embedding_dim FROM chunks WHERE product_id = :p"),
                    {"p": product.id if product else 0},
                )
                .scalars()
                .all()
            )
        assert product is not None and (product.embedding_model, product.embedding_dim) == ("test-embed", 16)
        assert dims == [16]
    finally:
        server.close()


def test_ingest_copies_of_the_sample_folder_agree(tmp_path: Path, db: Any, settings: Settings, embedder: Any) -> None:
    """Sources are relative to DIR, so the same files under another root sync as unchanged."""
    from rag.samples import sample_knowledge_dir

    src = sample_knowledge_dir() / "mesh-standards"
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(src, a)
    shutil.copytree(src, b)
    spec = ProductSpec("copy-test", classification="public")
    ingest_directory(db, settings, spec, a, embedder=embedder)
    again = ingest_directory(db, settings, spec, b, embedder=embedder)
    assert counts(again) == (0, 0, again.documents_unchanged, 0) and again.documents_unchanged >= 8


def test_windows_map_vectors_back_to_their_chunks() -> None:
    """Chunks are encoded sorted by length across documents; each vector must return to its chunk."""
    import numpy as np

    from rag.ingestion import _done, _Pending, _Window

    def fake_encode(texts: list[str]) -> Any:
        return _done(np.array([[float(len(t)), float(hash(t) % 1000)] for t in texts], dtype=np.float32))

    docs = [
        _Pending("", "", None, "", 0, [], texts, True)  # type: ignore[arg-type]
        for texts in (["ccc", "a", "bbbbbb"], [], ["dd", "eeeeeeeeee", "f", "gggg"])
    ]
    window = _Window.submit(docs, fake_encode, batch_size=2)
    assert [len(b) for b in window.batches] == [2, 2, 2, 1]
    for item, vectors in zip(docs, window.vectors(2), strict=True):
        assert [int(v[0]) for v in vectors] == [len(t) for t in item.texts]
        assert [int(v[1]) for v in vectors] == [hash(t) % 1000 for t in item.texts]

    # Two workers: equal batches, as many as a multiple of the workers (no worker left with a stub).
    rows = [_Pending("", "", None, "", 0, [], [f"t{i}" for i in range(40)], True)]  # type: ignore[arg-type]
    assert [len(b) for b in _Window.submit(rows, fake_encode, batch_size=32, workers=2).batches] == [20, 20]
    assert [len(b) for b in _Window.submit(rows, fake_encode, batch_size=8, workers=2).batches] == [7, 7, 7, 7, 6, 6]
    assert _Window.submit([], fake_encode, batch_size=8, workers=2).batches == []


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_encoder_processes_store_the_same_vectors_as_in_process(
    tmp_path: Path, db: Any, settings: Settings, embedder: Any, runtime: Literal["onnx", "torch"]
) -> None:
    import numpy as np

    from rag.encoder_pool import EncoderPool
    from rag.samples import sample_knowledge_dir

    src = sample_knowledge_dir() / "platform-runbooks"
    # Restricted to a group no other test uses: public copies of the runbooks would tie with the
    # originals in every other test's retrieval.
    # Workers under either runtime, against the process's embedder (ONNX Runtime by default).
    pooled_name, inline_name = f"pool-a-{runtime}", f"pool-b-{runtime}"
    with EncoderPool(2, batch_size=8, runtime=runtime, models_dir=settings.models_dir) as pool:
        pooled = ingest_directory(db, settings, ProductSpec(pooled_name, groups=["pool-test"]), src, pool=pool)
    inline = ingest_directory(db, settings, ProductSpec(inline_name, groups=["pool-test"]), src, embedder=embedder)
    assert pooled.chunks == inline.chunks > 20

    def vectors(product: str) -> Any:
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id"
                    " JOIN knowledge_products p ON p.id = c.product_id WHERE p.name = :n ORDER BY d.source, c.position"
                ),
                {"n": product},
            ).scalars()
            return np.stack([r.to_numpy() for r in rows])

    assert np.allclose(vectors(pooled_name), vectors(inline_name), atol=1e-4)
