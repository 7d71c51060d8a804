"""MiniLM in worker processes, one thread each (ONNX Runtime or torch, as `runtime` says).

Measured here: two torch threads in one process are 1.4x slower than one thread in each of two
processes, and the parent needs the GIL for reading, chunking and writing. So ingestion sends
batches to a pool of spawned processes (fork after torch is loaded is unsafe) and keeps at most a
few batches in flight, which bounds memory while both cores stay busy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rag.blas import use_one_blas_thread
from rag.embeddings import EmbeddingRuntime, MiniLMEmbedder, MiniLMOnnxEmbedder, Vectors, local_embedder

_worker_model: MiniLMEmbedder | MiniLMOnnxEmbedder | None = None


def _init_worker(batch_size: int, runtime: EmbeddingRuntime, models_dir: Path | None) -> None:
    global _worker_model
    use_one_blas_thread()
    _worker_model = local_embedder(runtime, models_dir, batch_size=batch_size, threads=1)


def _encode(texts: Sequence[str]) -> Vectors:
    assert _worker_model is not None, "worker initialiser did not run"
    return _worker_model.embed(texts)


def _pid_after(delay: float) -> int:
    time.sleep(delay)
    return os.getpid()


class EncoderPool:
    model_id = MiniLMEmbedder.model_id
    dimension = MiniLMEmbedder.dimension

    def __init__(
        self, workers: int, batch_size: int = 32, *, runtime: EmbeddingRuntime = "torch", models_dir: Path | None = None
    ) -> None:
        """`runtime="onnx"` needs `models_dir` (Settings.models_dir), where the workers find the exported graph."""
        if runtime == "onnx" and models_dir is None:
            raise ValueError("the ONNX runtime needs models_dir, where its exported graph is cached")
        self.workers = workers
        self.batch_size = batch_size
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(batch_size, runtime, models_dir),
        )

    def warm_up(self) -> None:
        """Start every worker and load its model, so timings exclude start-up."""
        futures = [self._executor.submit(_pid_after, 0.3) for _ in range(self.workers * 2)]
        pids = {f.result() for f in futures}
        if len(pids) < self.workers:  # a worker finished two sleeps before another started
            self.warm_up()

    def submit(self, texts: Sequence[str]) -> Future[Vectors]:
        return self._executor.submit(_encode, list(texts))

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        futures = [self.submit(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        parts = [f.result() for f in futures]
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
