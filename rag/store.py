"""Writes to the knowledge store: one document, its chunks and its term postings per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from rag.chunks import Chunk
from rag.embeddings import Vectors


@dataclass(frozen=True)
class StoredDocument:
    id: int
    source: str
    content_hash: str
    pipeline: str


def stored_documents(conn: Connection, product_id: int) -> dict[str, StoredDocument]:
    rows = conn.execute(
        text("SELECT id, source, content_hash, pipeline FROM documents WHERE product_id = :p"), {"p": product_id}
    )
    return {r.source: StoredDocument(r.id, r.source, r.content_hash, r.pipeline) for r in rows}


def vector_index_name(dim: int) -> str:
    return f"chunks_embedding_{int(dim)}_hnsw"


def has_vector_index(conn: Connection, dim: int) -> bool:
    return bool(conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": vector_index_name(dim)}).scalar_one())


def ensure_vector_index(conn: Connection, dim: int) -> bool:
    """Build the HNSW index for this dimension if missing; True if it was built now.

    Called after a bulk load: building once is much faster than inserting into an index row by row.
    """
    dim = int(dim)
    if has_vector_index(conn, dim):
        return False
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {vector_index_name(dim)} ON chunks"
        f" USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE embedding_dim = {dim}"
    )
    return True


def write_postings(conn: Connection, where: str, params: dict[str, Any]) -> None:
    """BM25 postings of the chunks matching `where` (a fixed SQL condition on `chunks c`), straight
    from their generated tsvector: PostgreSQL's own stemming, one pass."""
    conn.execute(
        text(
            "INSERT INTO chunk_terms (chunk_id, product_id, term, tf, dl)"
            " SELECT c.id, c.product_id, u.lexeme, coalesce(array_length(u.positions, 1), 1), len.dl"
            " FROM chunks c"
            " CROSS JOIN LATERAL (SELECT coalesce(sum(coalesce(array_length(x.positions, 1), 1)), 0) AS dl"
            "                     FROM unnest(c.tsv) x) len"
            " CROSS JOIN LATERAL unnest(c.tsv) u"
            f" WHERE {where}"
        ),
        params,
    )


def replace_document(
    conn: Connection,
    *,
    product_id: int,
    source: str,
    title: str,
    media_type: str,
    content_hash: str,
    pipeline: str,
    size_bytes: int,
    chunks: Sequence[Chunk],
    vectors: Vectors,
) -> int:
    """Replace (or add) one document with its chunks; the caller's transaction makes it atomic."""
    assert len(chunks) == len(vectors), "one vector per chunk"
    conn.execute(text("DELETE FROM documents WHERE product_id = :p AND source = :s"), {"p": product_id, "s": source})
    doc_id = conn.execute(
        text(
            "INSERT INTO documents (product_id, source, title, media_type, content_hash, pipeline, size_bytes)"
            " VALUES (:p, :s, :t, :m, :h, :pl, :b) RETURNING id"
        ),
        {"p": product_id, "s": source, "t": title, "m": media_type, "h": content_hash, "pl": pipeline, "b": size_bytes},
    ).scalar_one()
    if chunks:
        dim = int(vectors.shape[1])
        conn.execute(
            text(
                "INSERT INTO chunks (document_id, product_id, position, header_path, text, embedding, embedding_dim)"
                " VALUES (:d, :p, :pos, :hp, :t, :e, :dim)"
            ),
            [
                {"d": doc_id, "p": product_id, "pos": c.position, "hp": c.header_path, "t": c.text, "e": v, "dim": dim}
                for c, v in zip(chunks, vectors, strict=True)
            ],
        )
        write_postings(conn, "c.document_id = :d", {"d": doc_id})
    conn.execute(
        text(
            "UPDATE documents SET chunk_count = :n, token_count = ("
            " SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)"
            " FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) u WHERE c.document_id = :d) WHERE id = :d"
        ),
        {"d": doc_id, "n": len(chunks)},
    )
    return int(doc_id)


def delete_document(conn: Connection, product_id: int, source: str) -> bool:
    result = conn.execute(
        text("DELETE FROM documents WHERE product_id = :p AND source = :s"), {"p": product_id, "s": source}
    )
    return bool(result.rowcount)
