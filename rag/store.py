"""Writes to the knowledge store: one document, its chunks, its term postings and the product's BM25
statistics per transaction."""

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
    # PostgreSQL gives an index build parallel workers (up to max_parallel_maintenance_workers) only
    # for tables over min_parallel_table_scan_size, 8 MB: a threshold made for scans. HNSW costs about
    # 0.5 ms a row, so a load of a few thousand chunks was built on one core while the encoders idled
    # (1,860 chunks: 0.47-0.61 s alone, 0.27-0.38 s with the workers). For this transaction only.
    conn.exec_driver_sql("SET LOCAL min_parallel_table_scan_size = 0")
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {vector_index_name(dim)} ON chunks"
        f" USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE embedding_dim = {dim}"
    )
    return True


def write_postings(conn: Connection, where: str, params: dict[str, Any]) -> None:
    """BM25 postings of the chunks matching `where` (a fixed SQL condition on `chunks c`), straight
    from their generated tsvector (PostgreSQL's own stemming), and their counts added to the
    products' term statistics in the same statement."""
    conn.execute(
        text(
            "WITH added AS ("
            " INSERT INTO chunk_terms (chunk_id, product_id, term, tf, dl)"
            " SELECT c.id, c.product_id, u.lexeme, coalesce(array_length(u.positions, 1), 1), len.dl"
            " FROM chunks c"
            " CROSS JOIN LATERAL (SELECT coalesce(sum(coalesce(array_length(x.positions, 1), 1)), 0) AS dl"
            "                     FROM unnest(c.tsv) x) len"
            " CROSS JOIN LATERAL unnest(c.tsv) u"
            f" WHERE {where}"
            " RETURNING product_id, term)"
            " INSERT INTO product_terms AS pt (term, product_id, df)"
            " SELECT term, product_id, count(*) FROM added GROUP BY term, product_id ORDER BY term, product_id"
            " ON CONFLICT (term, product_id) DO UPDATE SET df = pt.df + EXCLUDED.df"
        ),
        params,
    )


def refresh_product_stats(conn: Connection, product_id: int) -> None:
    """Recount a product's chunk and token totals from its documents (after a bulk load)."""
    conn.execute(
        text(
            "INSERT INTO product_stats AS s (product_id, chunks, tokens)"
            " SELECT :p, coalesce(sum(chunk_count), 0), coalesce(sum(token_count), 0) FROM documents"
            " WHERE product_id = :p"
            " ON CONFLICT (product_id) DO UPDATE SET chunks = EXCLUDED.chunks, tokens = EXCLUDED.tokens"
        ),
        {"p": product_id},
    )


def _add_product_stats(conn: Connection, product_id: int, chunks: int, tokens: int) -> None:
    conn.execute(
        text(
            "INSERT INTO product_stats AS s (product_id, chunks, tokens) VALUES (:p, :c, :t)"
            " ON CONFLICT (product_id) DO UPDATE SET chunks = s.chunks + EXCLUDED.chunks,"
            " tokens = s.tokens + EXCLUDED.tokens"
        ),
        {"p": product_id, "c": chunks, "t": tokens},
    )


def delete_document(conn: Connection, product_id: int, source: str) -> bool:
    """Delete one document (its chunks and postings cascade) and take it out of the product's
    term statistics first; False if there was none."""
    doc = conn.execute(
        text("SELECT id, chunk_count, token_count FROM documents WHERE product_id = :p AND source = :s FOR UPDATE"),
        {"p": product_id, "s": source},
    ).first()
    if doc is None:
        return False
    # Terms whose last chunk goes are deleted, the others decremented (disjoint rows, one statement).
    conn.execute(
        text(
            "WITH gone AS ("
            " SELECT t.term, count(*) AS n FROM chunks c JOIN chunk_terms t ON t.chunk_id = c.id"
            " WHERE c.document_id = :d GROUP BY t.term),"
            " emptied AS ("
            " DELETE FROM product_terms pt USING gone g"
            " WHERE pt.term = g.term AND pt.product_id = :p AND pt.df <= g.n)"
            " UPDATE product_terms pt SET df = pt.df - g.n FROM gone g"
            " WHERE pt.term = g.term AND pt.product_id = :p AND pt.df > g.n"
        ),
        {"d": doc.id, "p": product_id},
    )
    _add_product_stats(conn, product_id, -doc.chunk_count, -doc.token_count)
    conn.execute(text("DELETE FROM documents WHERE id = :d"), {"d": doc.id})
    return True


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
    guard_flags: Sequence[Sequence[str]] | None = None,
    guard_detector: str | None = None,
) -> int:
    """Replace (or add) one document with its chunks; the caller's transaction makes it atomic.
    `guard_flags`: the context guard's verdict of each chunk, taken by `guard_detector` (rag/guards/documents.py)."""
    assert len(chunks) == len(vectors), "one vector per chunk"
    flags = list(guard_flags) if guard_flags is not None else [None] * len(chunks)
    assert len(flags) == len(chunks), "one verdict per chunk"
    delete_document(conn, product_id, source)
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
                "INSERT INTO chunks (document_id, product_id, position, header_path, text, embedding, embedding_dim,"
                " guard_flags, guard_detector) VALUES (:d, :p, :pos, :hp, :t, :e, :dim, :gf, :gd)"
            ),
            [
                {
                    "d": doc_id,
                    "p": product_id,
                    "pos": c.position,
                    "hp": c.header_path,
                    "t": c.text,
                    "e": v,
                    "dim": dim,
                    "gf": None if f is None else list(f),
                    "gd": None if f is None else guard_detector,
                }
                for c, v, f in zip(chunks, vectors, flags, strict=True)
            ],
        )
        write_postings(conn, "c.document_id = :d", {"d": doc_id})
    tokens = conn.execute(
        text(
            "UPDATE documents SET chunk_count = :n, token_count = ("
            " SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)"
            " FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) u WHERE c.document_id = :d) WHERE id = :d"
            " RETURNING token_count"
        ),
        {"d": doc_id, "n": len(chunks)},
    ).scalar_one()
    _add_product_stats(conn, product_id, len(chunks), int(tokens))
    return int(doc_id)
