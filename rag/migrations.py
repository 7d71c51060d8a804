"""Ordered schema migrations, recorded in `schema_migrations`; never `create_all` on a live database.

Each migration runs once, in order, inside the caller's transaction, under an advisory lock so two
processes starting at once do not both apply it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_LOCK_KEY = 0x6D657368  # "mesh": any constant shared by every meshpilot process

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "knowledge products, documents, chunks, term postings",
        """
        CREATE EXTENSION IF NOT EXISTS vector;

        CREATE TABLE knowledge_products (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name            text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
            domain          text,
            owner           text,
            classification  text NOT NULL
                            CHECK (classification IN ('public', 'internal', 'confidential', 'restricted')),
            groups          text[] NOT NULL DEFAULT '{}',
            version         text,
            description     text,
            embedding_model text NOT NULL,
            embedding_dim   integer NOT NULL CHECK (embedding_dim > 0),
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE documents (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            product_id   bigint NOT NULL REFERENCES knowledge_products (id) ON DELETE CASCADE,
            source       text NOT NULL,
            title        text NOT NULL DEFAULT '',
            media_type   text NOT NULL,
            content_hash text NOT NULL,
            pipeline     text NOT NULL,
            size_bytes   bigint NOT NULL,
            chunk_count  integer NOT NULL DEFAULT 0,
            token_count  bigint NOT NULL DEFAULT 0,
            ingested_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (product_id, source)
        );

        -- Untyped vector + one partial HNSW index per dimension, so products indexed with
        -- different embedding models can live side by side (rag/store.py creates the index).
        CREATE TABLE chunks (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            document_id   bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            product_id    bigint NOT NULL REFERENCES knowledge_products (id) ON DELETE CASCADE,
            position      integer NOT NULL,
            header_path   text NOT NULL DEFAULT '',
            text          text NOT NULL,
            embedding     vector NOT NULL,
            embedding_dim integer NOT NULL,
            tsv           tsvector GENERATED ALWAYS AS (
                              setweight(to_tsvector('english', header_path), 'A')
                              || setweight(to_tsvector('english', text), 'B')) STORED,
            UNIQUE (document_id, position)
        );
        CREATE INDEX chunks_product_idx ON chunks (product_id);

        -- BM25 postings: one row per (chunk, lexeme) with its term frequency and the chunk's
        -- length, written from the tsvector in the same transaction as the chunk. Document
        -- frequencies are counted over the caller's visible postings at query time, so they
        -- never drift and never leak statistics of products the caller cannot read.
        CREATE TABLE chunk_terms (
            chunk_id   bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
            product_id bigint NOT NULL,
            term       text NOT NULL,
            tf         integer NOT NULL,
            dl         integer NOT NULL
        );
        CREATE INDEX chunk_terms_term_idx ON chunk_terms (term) INCLUDE (product_id, chunk_id, tf, dl);
        CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_id);
        """,
    ),
    (
        2,
        "api keys, rate-limit windows, audit events, webhook deliveries",
        """
        -- Only a SHA-256 of each key is stored: keys are 256 random bits, so a fast hash is as safe
        -- as a slow one and keeps authentication to one indexed lookup.
        CREATE TABLE api_keys (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$'),
            prefix     text NOT NULL,
            key_hash   text NOT NULL UNIQUE,
            groups     text[] NOT NULL DEFAULT '{}',
            is_admin   boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        CREATE UNIQUE INDEX api_keys_active_name_idx ON api_keys (name) WHERE revoked_at IS NULL;

        -- Requests per key per minute, shared by every API worker and replica. UNLOGGED: no WAL
        -- write per request; a database crash only forgets the current minute's counts.
        CREATE UNLOGGED TABLE api_rate_windows (
            key_id       bigint PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
            window_start bigint NOT NULL,
            hits         integer NOT NULL,
            prev_hits    integer NOT NULL
        );

        CREATE TABLE audit_events (
            id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at      timestamptz NOT NULL DEFAULT now(),
            actor   text NOT NULL,
            action  text NOT NULL,
            target  text,
            details jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_events_at_idx ON audit_events (at);

        -- Every verified GitHub delivery with its raw body, so nothing is lost and a delivery can
        -- be processed again later; the response sent is stored with it.
        CREATE TABLE webhook_deliveries (
            delivery_id text PRIMARY KEY,
            event       text NOT NULL,
            action      text,
            repository  text,
            pull_number integer,
            status      text NOT NULL,
            comment     text,
            response    jsonb NOT NULL,
            payload     bytea NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        3,
        "BM25 term statistics per product, postings ordered by impact",
        """
        -- BM25 statistics that rag/store.py keeps in the same transaction as the postings they
        -- count, so a query reads a few rows instead of counting postings: chunks per (term,
        -- product) and chunks and tokens per product. A query sums them over the caller's visible
        -- products only, so no statistic of a product the caller cannot read reaches its scores.
        CREATE TABLE product_terms (
            term       text NOT NULL,
            product_id bigint NOT NULL REFERENCES knowledge_products (id) ON DELETE CASCADE,
            df         integer NOT NULL CHECK (df > 0),
            PRIMARY KEY (term, product_id)
        );
        INSERT INTO product_terms (term, product_id, df)
            SELECT term, product_id, count(*) FROM chunk_terms GROUP BY term, product_id;

        CREATE TABLE product_stats (
            product_id bigint PRIMARY KEY REFERENCES knowledge_products (id) ON DELETE CASCADE,
            chunks     bigint NOT NULL,
            tokens     bigint NOT NULL
        );
        INSERT INTO product_stats (product_id, chunks, tokens)
            SELECT product_id, sum(chunk_count), sum(token_count) FROM documents GROUP BY product_id;

        -- Static impact ordering: BM25's term-frequency factor with the default k1 1.2, b 0.5 and a
        -- reference chunk length of 64 lexemes. Each query term reads only its best postings in
        -- this order (rag/retrieval.py, which spells the expression the same way); scores are then
        -- computed exactly from tf, dl and the current statistics. chunk_id breaks ties so the cut
        -- is deterministic. An expression index, not a column: no table rewrite, so the visibility
        -- map that lets this be an index-only scan survives the migration.
        DROP INDEX chunk_terms_term_idx;
        CREATE INDEX chunk_terms_impact_idx ON chunk_terms
            (term, ((tf / (tf + 1.2 * (0.5 + 0.5 * dl / 64.0)))::real) DESC, chunk_id) INCLUDE (product_id, tf, dl);
        ANALYZE product_terms, product_stats, chunk_terms;
        """,
    ),
    (
        4,
        "guard verdicts of each chunk, taken at ingestion",
        """
        -- What the context guard found in a chunk when it was ingested (empty: nothing), and with which
        -- detector; NULL or another detector means the chunk is scanned again when it is retrieved.
        ALTER TABLE chunks ADD COLUMN guard_flags text[], ADD COLUMN guard_detector text;
        """,
    ),
    (
        5,
        "copilot threads and the keys that own them",
        """
        -- The graph's state lives in LangGraph's checkpoint tables; this row says whose thread it is
        -- (the API answers 404 to any other non-admin key) and what was asked for.
        CREATE TABLE copilot_threads (
            thread_id  text PRIMARY KEY,
            key_id     bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
            name       text NOT NULL,
            domain     text NOT NULL,
            owner      text NOT NULL,
            source     text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX copilot_threads_key_idx ON copilot_threads (key_id, created_at);
        """,
    ),
    (
        6,
        "embeddings stored in their rows",
        """
        -- pgvector gives its type EXTERNAL storage, so a chunk row over 2 kB (its text, its tsvector and a
        -- 384-dim vector) kept the vector in the TOAST table, and the dense side fetched each of its 100
        -- candidates' vectors through the TOAST index. MAIN keeps a vector in its row (out of line only
        -- when nothing else makes the row fit a page); the text or tsvector moves out instead, which only
        -- the few winners read. PostgreSQL CPU of the dense statement on the 50,000-chunk serving corpus:
        -- 3.9 -> 2.6 ms. The USING rewrite moves the stored vectors in and rebuilds the indexes.
        SET LOCAL min_parallel_table_scan_size = 0;
        ALTER TABLE chunks
            ALTER COLUMN embedding TYPE vector USING CAST(CAST(embedding AS real[]) AS vector),
            ALTER COLUMN embedding SET STORAGE MAIN;
        """,
    ),
    (
        7,
        "key changes notified",
        """
        -- API processes remember checked keys while they listen on this channel (serving/api/key_cache.py):
        -- every change of a key, by the CLI or by hand, must make them look it up again.
        CREATE FUNCTION api_keys_notify_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM pg_notify('meshpilot_api_keys', OLD.id::text);
            RETURN NULL;
        END
        $fn$;
        CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
            FOR EACH ROW EXECUTE FUNCTION api_keys_notify_change();
        """,
    ),
]


def current_version(conn: Connection) -> int:
    exists = conn.execute(text("SELECT to_regclass('schema_migrations') IS NOT NULL")).scalar_one()
    if not exists:
        return 0
    return int(conn.execute(text("SELECT coalesce(max(version), 0) FROM schema_migrations")).scalar_one())


def migrate(conn: Connection) -> list[int]:
    """Apply pending migrations in the caller's transaction; return the versions applied."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    # Every version not recorded yet, not only those above the highest: versions are reserved per
    # change, so one may land after a higher one was applied.
    done = set(conn.execute(text("SELECT version FROM schema_migrations")).scalars())
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        conn.exec_driver_sql(sql)
        conn.execute(text("INSERT INTO schema_migrations (version, name) VALUES (:v, :n)"), {"v": version, "n": name})
        applied.append(version)
    return applied
