"""The one settings object. Built at the edge (CLI callback, app factory) and passed down explicitly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHPILOT_", extra="ignore")

    home: Path = Field(Path(".meshpilot"), description="Where the embedded database and caches live.")
    database_url: SecretStr | None = Field(
        None, description="Any PostgreSQL with pgvector; unset = the embedded server under $home/pg."
    )

    # Embeddings: the packaged MiniLM unless an OpenAI-compatible endpoint is configured.
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int = Field(32, ge=1, le=2048)
    embedding_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="How the bundled MiniLM runs: ONNX Runtime (graph exported once to models_dir; 0.4 of "
        "torch's CPU for a lone question, 0.6 for passages) or torch. Same model, same vectors within 1e-6.",
    )
    query_embedding_precision: Literal["int8", "fp32"] = Field(
        "int8",
        description="Questions under the ONNX runtime: int8 (the graph quantized once, 0.3-0.4 of fp32's CPU "
        "per question on CPUs with VNNI or AMX, cosine 0.99 to fp32's vectors; SciFact test hybrid nDCG@10 "
        "-0.003, see docs/benchmarks.md) or fp32. Stored passages are always fp32.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where the exported ONNX graph is cached (keyed by weights and versions); unset = $home/models.",
    )
    embed_workers: int = Field(0, ge=0, le=64, description="Encoder processes for ingestion; 0 = one per core.")

    # Generation: none = the offline extractive answerer.
    llm_base_url: str | None = None
    llm_model: str = "default"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_tokens: int = Field(512, ge=16, le=8192)

    # Chunking (llama-index token counts, kept under MiniLM's 256 word pieces).
    chunk_size: int = Field(200, ge=32, le=2048)
    chunk_overlap: int = Field(20, ge=0, le=512)

    db_pool_size: int = Field(
        40, ge=1, le=500, description="Connections each process keeps open: the API's threadpool size (40)."
    )
    db_pool_overflow: int = Field(10, ge=0, le=500, description="Extra connections under bursts, closed after.")
    # 3 per core: measured on 2 cores with 32 clients (docs/benchmarks.md), 6 kept the throughput of no
    # limit and cut p95 by a fifth; 4 cost throughput.
    ask_concurrency: int = Field(
        default_factory=lambda: 3 * (os.cpu_count() or 1),
        ge=1,
        le=500,
        description="Questions one API process answers at once; the others wait their turn in arrival order.",
    )
    answer_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        le=64,
        description="Worker processes that answer the questions of one API process (each loads its own models, "
        "about 200 MB), sharing ask_concurrency between them; 0 = answer in the API process's own threads.",
    )

    # Retrieval. dense_weight 0.5 was chosen on SciFact's train qrels, and 80 candidates a side (with
    # ef_search 80) kept its hybrid nDCG@10 within 0.001 of 100 at 7 % less of the statement's CPU;
    # postings_per_term is the smallest of 500, 600, 750 and 1,000 whose train nDCG@10 stays within
    # 0.001 (hybrid) and 0.005 (fulltext) of reading every posting (docs/benchmarks.md).
    candidates: int = Field(80, ge=10, le=1000, description="Candidates each side (dense, lexical) fuses.")
    ef_search: int = Field(80, ge=10, le=1000, description="hnsw.ef_search: at least `candidates`.")
    dense_weight: float = Field(0.5, ge=0.0, le=1.0)
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.5, ge=0, le=1)
    postings_per_term: int = Field(
        600, ge=10, le=10_000_000, description="Best postings (by BM25 impact) each query term reads."
    )
    top_k: int = Field(5, ge=1, le=50)

    max_question_chars: int = Field(4000, ge=16)

    # Guards (rag/guards/): what the output guard lets through.
    guard_allowed_link_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts whose links and images may appear in replies (subdomains included); others are removed.",
    )
    guard_allowed_email_domains: list[str] = Field(
        default_factory=list,
        description="E-mail domains kept in replies (e.g. your company's); other addresses are redacted.",
    )

    # HTTP service (serving/).
    api_max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413.")
    api_rate_limit_per_minute: int = Field(600, ge=1, description="Requests per API key per minute (429 above).")
    api_cors_origins: list[str] = Field(default_factory=list, description="Allowed browser origins; none by default.")
    github_webhook_secret: SecretStr | None = Field(None, description="HMAC secret of /webhooks/github.")
    api_ingest_root: Path | None = Field(
        None, description="Server-side folders under this one may be ingested through /v1/ingest; unset = none."
    )

    # Evals: an OpenAI-compatible judge model (vLLM) for Ragas' LLM metrics; unset = offline metrics only.
    judge_base_url: str | None = None
    judge_model: str = "default"
    judge_api_key: SecretStr | None = None

    # Copilot over HTTP (serving/): where approved drafts are published, and the PR bot's clones.
    copilot_publish_root: Path | None = Field(
        None, description="Approved copilot threads publish to <root>/<domain>/<name>; unset = $home/data-products."
    )
    github_repositories: dict[str, Path] = Field(
        default_factory=dict,
        description='The PR bot\'s local clones, JSON {"owner/name": "/path/to/clone"}; it never fetches.',
    )

    @property
    def data_dir(self) -> Path:
        return self.home.expanduser().resolve() / "pg"

    @property
    def models_dir(self) -> Path:
        if self.model_cache_dir is not None:
            return self.model_cache_dir.expanduser().resolve()
        return self.home.expanduser().resolve() / "models"

    @property
    def workers(self) -> int:
        return self.embed_workers or (os.cpu_count() or 1)
