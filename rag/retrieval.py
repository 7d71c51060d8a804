"""Hybrid retrieval in one SQL statement: `RetrievedPassage`s the caller may read, best first.

Dense side: HNSW cosine top-N over the caller's visible chunks. Lexical side: BM25 computed in SQL
from the term postings and the term statistics ingestion keeps (OR semantics over the question's
lexemes: `plainto_tsquery` ANDs them and matches almost nothing for natural questions). Each side's
top-N scores are turned into z-scores and mixed with `dense_weight`; a chunk missing from one side
gets that side's lowest score. Measured on SciFact here: z-score fusion 0.7365 nDCG@10,
reciprocal-rank fusion 0.712.

The permission predicate is inside both sides, before top-N, never applied to results afterwards.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import text

from rag.database import Database
from rag.embeddings import Embedder, Vectors, query_embedder
from rag.errors import EmbeddingModelMismatch, NotFound, UsageError
from rag.products import VISIBLE
from rag.settings import Settings


class Mode(StrEnum):
    DENSE = "dense"
    FULLTEXT = "fulltext"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class RetrievedPassage:
    chunk_id: int
    product: str
    source: str
    title: str
    header_path: str
    text: str
    position: int
    score: float
    dense: float  # cosine similarity to the question: an absolute relevance signal
    lexical: float | None
    guard_flags: list[str] | None = None  # the context guard's verdict at ingestion ([] = clean)
    guard_detector: str | None = None  # which detector took it (rag/guards/documents.py)


@dataclass
class Retrieval:
    passages: list[RetrievedPassage]
    ms: float
    query_vector: Vectors | None = field(default=None, repr=False)


_ALLOWED = f"""
allowed AS MATERIALIZED (
    SELECT p.id FROM knowledge_products p
    WHERE {VISIBLE}
      AND (CAST(:products AS text[]) IS NULL OR p.name = ANY (CAST(:products AS text[])))
      AND (CAST(:domain AS text) IS NULL OR p.domain = CAST(:domain AS text))
      AND p.embedding_model = :model AND p.embedding_dim = :dim
)"""

_DENSE = """
dense AS (
    SELECT c.id AS chunk_id, 1 - (c.embedding::vector({dim}) <=> CAST(:qvec AS vector({dim}))) AS score
    FROM chunks c
    WHERE c.embedding_dim = {dim} AND c.product_id = ANY (ARRAY(SELECT id FROM allowed))
    ORDER BY c.embedding::vector({dim}) <=> CAST(:qvec AS vector({dim}))
    LIMIT {candidates}
)"""

# BM25 statistics come from tables rag/store.py keeps current in the write's own transaction
# (product_terms: chunks per term and product; product_stats: chunks and tokens per product), summed
# over the caller's visible products only. Each query term reads its `postings_per_term` best visible
# postings in the order of chunk_terms_impact_idx, whose expression the ORDER BY repeats exactly (static impact
# pruning: SciFact train nDCG@10 unchanged at 1,000, see docs/benchmarks.md); the scores of what is
# read are exact.
_LEXICAL = """
corpus AS (
    SELECT greatest(sum(s.chunks), 1)::float8 AS n,
           greatest(sum(s.tokens)::float8 / greatest(sum(s.chunks), 1), 1) AS avgdl
    FROM product_stats s WHERE s.product_id = ANY (ARRAY(SELECT id FROM allowed))
),
qterms AS MATERIALIZED (
    -- BM25 of a posting is w * tf / (tf + c0 + c1 * dl); the per-term factors are computed here once,
    -- so the thousands of postings each pay for four operations instead of ten. Each lexeme looks up
    -- its own statistics by primary key: joined, the planner read all of product_terms (0.5 ms on the
    -- serving benchmark's 4,000 terms, and growing with the vocabulary).
    SELECT t.term, ln(1 + (c.n - t.df + 0.5) / (t.df + 0.5)) * (:k1 + 1) AS w,
           :k1 * (1 - :b) AS c0, :k1 * :b / c.avgdl AS c1
    FROM unnest(to_tsvector('english', :question)) u
    CROSS JOIN LATERAL (
        SELECT u.lexeme AS term, sum(pt.df) AS df FROM product_terms pt
        WHERE pt.term = u.lexeme AND pt.product_id = ANY (ARRAY(SELECT id FROM allowed))
    ) t
    CROSS JOIN corpus c
    WHERE t.df IS NOT NULL
),
lexical AS (
    SELECT p.chunk_id,
           sum(q.w * p.tf / (p.tf + q.c0 + q.c1 * p.dl)) AS score
    FROM qterms q
    CROSS JOIN LATERAL (
        SELECT t.chunk_id, t.tf, t.dl FROM chunk_terms t
        WHERE t.term = q.term AND t.product_id = ANY (ARRAY(SELECT id FROM allowed))
        ORDER BY (t.tf / (t.tf + 1.2 * (0.5 + 0.5 * t.dl / 64.0)))::real DESC, t.chunk_id
        LIMIT {postings}
    ) p
    GROUP BY p.chunk_id
    ORDER BY score DESC
    LIMIT {candidates}
)"""

_FUSED = {
    Mode.HYBRID: """
dstats AS (SELECT avg(score) AS mu, stddev_pop(score) AS sd, min(score) AS lo FROM dense),
lstats AS (SELECT avg(score) AS mu, stddev_pop(score) AS sd, min(score) AS lo FROM lexical),
fused AS (
    SELECT coalesce(d.chunk_id, l.chunk_id) AS chunk_id, l.score AS lexical,
           :w * coalesce((coalesce(d.score, ds.lo) - ds.mu) / nullif(ds.sd, 0), 0)
           + (1 - :w) * coalesce((coalesce(l.score, ls.lo) - ls.mu) / nullif(ls.sd, 0), 0) AS score
    FROM dense d FULL JOIN lexical l ON l.chunk_id = d.chunk_id
    CROSS JOIN dstats ds CROSS JOIN lstats ls
)""",
    Mode.DENSE: "fused AS (SELECT chunk_id, NULL::float8 AS lexical, score FROM dense)",
    Mode.FULLTEXT: "fused AS (SELECT chunk_id, score AS lexical, score FROM lexical)",
}

_FINAL = """,
top AS MATERIALIZED (SELECT chunk_id, score, lexical FROM fused ORDER BY score DESC, chunk_id LIMIT :k)
SELECT f.chunk_id, f.score, f.lexical, c.text, c.header_path, c.position, c.guard_flags, c.guard_detector,
       1 - (c.embedding::vector({dim}) <=> CAST(:qvec AS vector({dim}))) AS dense,
       d.source, d.title, p.name AS product
FROM top f
CROSS JOIN LATERAL (
    -- Primary-key lookups for the few winners; the permission predicate is checked once more here.
    SELECT * FROM chunks c WHERE c.id = f.chunk_id AND c.product_id = ANY (ARRAY(SELECT id FROM allowed))
) c
JOIN documents d ON d.id = c.document_id
JOIN knowledge_products p ON p.id = c.product_id
ORDER BY f.score DESC, f.chunk_id"""


def retrieval_sql(mode: Mode, dim: int, candidates: int, postings: int) -> str:
    """The statement for `mode`, with psycopg's `%(name)s` placeholders (`retrieve` runs it on the
    driver's connection). The sizes are formatted in, not bound: with a bound LIMIT PostgreSQL
    judged its generic plan worse than a custom one and planned the statement again on every execution
    (55 custom plans of 55, 1.7 ms each); with literals it keeps one plan per connection (50 generic of
    55). PostgreSQL CPU a question on the serving benchmark's 50,000 chunks: 10.9 -> 9.9 ms."""
    ctes = [_ALLOWED]
    if mode in (Mode.DENSE, Mode.HYBRID):
        ctes.append(_DENSE)
    if mode in (Mode.FULLTEXT, Mode.HYBRID):
        ctes.append(_LEXICAL)
    ctes.append(_FUSED[mode])
    # The only values formatted into SQL: integers, from the embedder and the validated settings.
    sizes = {"dim": int(dim), "candidates": int(candidates), "postings": int(postings)}
    return _PARAMETER.sub(r"%(\1)s", ("WITH " + ",".join(ctes) + _FINAL).format(**sizes))


# `:name` as SQLAlchemy's text() writes a parameter (and `VISIBLE`, shared with it, does); not the `::` of a cast.
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


# How long a passed `check_products` is remembered per (groups, products, domain). The check only
# turns a silent miss into a clear error: the retrieval SQL filters by model and permission itself, so
# a product deleted or re-indexed meanwhile is never returned; its error comes at most this late.
CHECK_TTL_S = 5.0
_CHECKS_KEPT = 4096


class HybridRetriever:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings
        self._sql = {
            mode: retrieval_sql(mode, embedder.dimension, settings.candidates, settings.postings_per_term)
            for mode in Mode
        }
        self._passed: dict[tuple[Any, ...], float] = {}  # check key -> monotonic time it expires

    @classmethod
    def for_questions(cls, db: Database, embedder: Embedder, settings: Settings) -> HybridRetriever:
        """The retriever the service answers with: questions embedded as `query_embedder` says (the
        bundled MiniLM's int8 twin by default), `embedder` being the one passages were embedded with."""
        return cls(db, query_embedder(settings, embedder), settings)

    def check_products(self, groups: list[str], products: list[str] | None, domain: str | None) -> None:
        """Fail loudly when a visible product was indexed with another embedding model."""
        key = (tuple(sorted(groups)), None if products is None else tuple(products), domain)
        now = time.monotonic()
        if self._passed.get(key, 0.0) > now:
            return
        self._check(groups, products, domain)
        if len(self._passed) >= _CHECKS_KEPT:
            self._passed.clear()
        self._passed[key] = now + CHECK_TTL_S

    def _check(self, groups: list[str], products: list[str] | None, domain: str | None) -> None:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT p.name, p.embedding_model, p.embedding_dim FROM knowledge_products p"
                    f" WHERE {VISIBLE}"
                    " AND (CAST(:products AS text[]) IS NULL OR p.name = ANY (CAST(:products AS text[])))"
                    " AND (CAST(:domain AS text) IS NULL OR p.domain = CAST(:domain AS text))"
                ),
                {"groups": groups, "products": products, "domain": domain},
            ).all()
        # One named product must exist for the caller; a list is a filter and may name unreadable ones.
        if products is not None and len(products) == 1 and not rows:
            raise NotFound(f"no knowledge product named {products[0]!r} that you may read")
        other = [
            r for r in rows if (r.embedding_model, r.embedding_dim) != (self.embedder.model_id, self.embedder.dimension)
        ]
        if other:
            names = ", ".join(f"{r.name} ({r.embedding_model})" for r in other)
            raise EmbeddingModelMismatch(
                f"these products were indexed with another embedding model than {self.embedder.model_id}: "
                f"{names}; re-ingest them with --reembed, or narrow the question with --product"
            )

    def retrieve(
        self,
        question: str,
        *,
        groups: list[str],
        product: str | None = None,
        products: list[str] | None = None,
        domain: str | None = None,
        top_k: int | None = None,
        mode: Mode = Mode.HYBRID,
        query_vector: Vectors | None = None,
        check: bool = True,
    ) -> Retrieval:
        question = question.strip()
        if not question:
            raise UsageError("the question is empty")
        names = [product] if product is not None else products
        if check:
            self.check_products(groups, names, domain)
        started = time.perf_counter()
        if query_vector is None:
            query_vector = self.embedder.embed([question])[0]
        params = self._params(question, groups, names, domain, query_vector, top_k)
        # One statement: its own snapshot, no transaction around it.
        with self.db.driver_autocommit(f"{mode} retrieval") as conn:
            rows = conn.execute(self._sql[mode], params).fetchall()
        passages = [
            RetrievedPassage(
                chunk_id=chunk_id,
                product=product,
                source=source,
                title=title,
                header_path=header_path,
                text=passage,
                position=position,
                score=float(score),
                dense=float(dense),
                lexical=None if lexical is None else float(lexical),
                guard_flags=None if guard_flags is None else list(guard_flags),
                guard_detector=guard_detector,
            )
            # The columns in _FINAL's order.
            for (
                chunk_id,
                score,
                lexical,
                passage,
                header_path,
                position,
                guard_flags,
                guard_detector,
                dense,
                source,
                title,
                product,
            ) in rows
        ]
        return Retrieval(passages, (time.perf_counter() - started) * 1000, query_vector)

    def _params(
        self,
        question: str,
        groups: list[str],
        products: list[str] | None,
        domain: str | None,
        query_vector: Vectors,
        top_k: int | None,
    ) -> dict[str, Any]:
        return {
            "groups": groups,
            "products": products,
            "domain": domain,
            "model": self.embedder.model_id,
            "dim": self.embedder.dimension,
            "qvec": np.asarray(query_vector, dtype=np.float32),
            "question": question,
            "k1": self.settings.bm25_k1,
            "b": self.settings.bm25_b,
            "w": self.settings.dense_weight,
            "k": top_k or self.settings.top_k,
        }
