"""CPU per text of the bundled MiniLM under torch and under ONNX Runtime, one thread each, by batch size.

Texts: the golden questions (what /v1/ask embeds, batched by CoalescingEncoder) and the sample corpus's
chunks as ingestion embeds them. CPU time of this process (time.process_time), so other load on the
machine inflates both runtimes alike; the runtimes take turns, `rounds` times, and the median counts.

    MESHPILOT_HOME=... python -m evals.benchmarks.embeddings [--json]   (the graph cached under $home/models)
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.embeddings import MiniLMEmbedder, MiniLMOnnxEmbedder, Vectors
from rag.settings import Settings

BATCHES = (1, 4, 8, 16, 32)


def _cpu_ms_per_text(encode: Callable[[list[str]], Vectors], texts: list[str], batch: int, total: int) -> float:
    done, start = 0, time.process_time()
    while done < total:
        encode([texts[(done + i) % len(texts)] for i in range(batch)])
        done += batch
    return (time.process_time() - start) * 1000 / done


def run(settings: Settings, rounds: int = 3) -> dict[str, Any]:
    """`onnx_load_s` includes the export when settings.models_dir holds no graph yet."""
    from evals.benchmarks.ingest import build_corpus, corpus_texts
    from evals.benchmarks.serve import golden_questions

    workdir = Path(tempfile.mkdtemp(prefix="meshpilot-bench-emb-"))
    try:
        build_corpus(workdir, 1)
        passages = corpus_texts(workdir, settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    started = time.perf_counter()
    onnx = MiniLMOnnxEmbedder(settings.models_dir)
    load_s = time.perf_counter() - started
    torch = MiniLMEmbedder()
    sets = {"questions": (golden_questions(), 192), "passages": (passages, 64)}
    # _encode: the model call itself, without the coalescing queue in front.
    runtimes: dict[str, Callable[[list[str]], Vectors]] = {"torch": torch._encode, "onnx": onnx._encode}
    samples: dict[tuple[str, str, int], list[float]] = {}
    for texts, _ in sets.values():
        for encode in runtimes.values():
            encode(texts[:8])  # warm-up
    for _ in range(rounds):
        for name, (texts, total) in sets.items():
            for batch in BATCHES:
                for runtime, encode in runtimes.items():
                    ms = _cpu_ms_per_text(encode, texts, batch, total)
                    samples.setdefault((name, runtime, batch), []).append(ms)
    rows = []
    for name in sets:
        for batch in BATCHES:
            t = statistics.median(samples[(name, "torch", batch)])
            o = statistics.median(samples[(name, "onnx", batch)])
            rows.append({"texts": name, "batch": batch, "torch_ms": round(t, 2), "onnx_ms": round(o, 2)})
    agreement = {}
    for name, (texts, _) in sets.items():
        a, b = torch._encode(texts), onnx._encode(texts)
        agreement[name] = {
            "max_abs_diff": float(np.abs(a - b).max()),
            "min_cosine": float((a * b).sum(axis=1).min()),
        }
    lengths = {name: _mean_tokens(onnx, texts) for name, (texts, _) in sets.items()}
    return {
        "rows": rows,
        "agreement": agreement,
        "mean_word_pieces": lengths,
        "onnx_load_s": round(load_s, 2),
        "rounds": rounds,
    }


def _mean_tokens(model: MiniLMOnnxEmbedder, texts: list[str]) -> float:
    return float(np.mean([len(e.ids) for e in model._tokenizer.encode_batch(texts)]))


def main(argv: list[str]) -> None:
    result = run(Settings())
    if "--json" in argv:
        print(json.dumps(result, indent=2))
        return
    print("| texts | batch | torch CPU ms/text | ONNX CPU ms/text | torch / ONNX |")
    print("|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        ratio = r["torch_ms"] / r["onnx_ms"]
        print(f"| {r['texts']} | {r['batch']} | {r['torch_ms']:.2f} | {r['onnx_ms']:.2f} | {ratio:.2f} |")
    rest = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(rest, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
