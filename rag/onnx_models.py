"""The packaged all-MiniLM-L6-v2 as one ONNX graph, exported once from its weights and cached on disk.

The graph is this model's sentence-transformers pipeline (BERT, mean pooling over the attention mask,
L2 normalisation) traced by torch's TorchScript exporter, so ONNX Runtime returns the same fp32 vectors
as torch (within 1e-6) and indexes made by either runtime stay valid. Export needs torch, transformers and
onnx; running the graph needs none of them.

Cache: `<models_dir>/<model>-onnx-<key>/` where the key hashes the weights, the model's layout files and
the exporter's versions. A folder is written under a temporary name and renamed into place under a file
lock, so a crash leaves no half-written graph and concurrent processes export once; its manifest holds the
graph's sha256, checked on every load: a missing, partial or altered graph is exported again.

Questions may run on an int8 twin of that graph (`cached_int8_graph`): ONNX Runtime's dynamic
quantization (weights int8 per output channel, activations quantized per call), derived from the fp32
graph and cached the same way. Stored passages stay fp32; docs/benchmarks.md has what it costs in
retrieval quality and saves in time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Bump when the export below changes what it writes.
RECIPE = "minilm-mean-l2-v1"
OPSET = 17
GRAPH_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# What the export reads; the tokenizer files are read at run time from the model folder itself.
_SOURCE_FILES = ("config.json", "model.safetensors", "modules.json", "1_Pooling/config.json")
_EXPORTERS = ("torch", "transformers", "onnx")
_STALE_TEMP_S = 3600.0
INT8_RECIPE = "ort-dynamic-qint8-per-channel-v1"
# The int8 twin must point where the fp32 graph points: measured 0.978 minimum, 0.994 mean cosine over
# 1,271 questions; a graph under this floor on the probe is refused, and questions stay on fp32.
INT8_MIN_COSINE = 0.95


def cached_graph(model_dir: Path, models_dir: Path, name: str) -> Path:
    """The verified ONNX graph of the model in `model_dir`, exported first if the cache lacks a valid one;
    `name` (a folder-safe model name) starts the cache folder's name."""
    _check_layout(model_dir)
    key, source = _cache_key(model_dir)
    return _cached(
        models_dir / f"{name}-onnx-{key[:16]}", key, lambda graph: _export(model_dir, graph, key, source, name)
    )


def cached_int8_graph(fp32_graph: Path, models_dir: Path, name: str) -> Path:
    """The verified int8 twin of `fp32_graph` (a graph `cached_graph` returned), quantized first if the
    cache lacks a valid one."""
    source = json.loads((fp32_graph.parent / MANIFEST_FILE).read_text())["sha256"]
    versions = {name: metadata.version(name) for name in ("onnxruntime", "onnx")}
    identity = {"recipe": INT8_RECIPE, "source": source, "versions": versions}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def quantize(graph: Path) -> None:
        started = time.perf_counter()
        _quantize(fp32_graph, graph)
        _write_manifest(graph, {"key": key, **identity}, time.perf_counter() - started)

    return _cached(models_dir / f"{name}-onnx-int8-{key[:16]}", key, quantize)


def _cached(final: Path, key: str, produce: Callable[[Path], None]) -> Path:
    """`final`'s graph if its manifest verifies under `key`; else `produce` writes it into a temporary
    folder renamed into place, under a lock, so concurrent processes produce it once."""
    if _valid(final, key):
        return final / GRAPH_FILE
    models_dir = final.parent
    models_dir.mkdir(parents=True, exist_ok=True)
    with _locked(models_dir / f".{final.name}.lock"):
        if _valid(final, key):  # another process produced it while this one waited
            return final / GRAPH_FILE
        _remove_stale_temps(models_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=models_dir))
        try:
            produce(tmp / GRAPH_FILE)
            if final.exists():  # invalid: set aside, then replace
                trash = Path(tempfile.mkdtemp(prefix=f".bad-{final.name}-", dir=models_dir))
                final.rename(trash / "old")
                shutil.rmtree(trash, ignore_errors=True)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _valid(final, key):
        raise RuntimeError(f"the ONNX graph in {final} does not verify")
    return final / GRAPH_FILE


def _quantize(fp32_graph: Path, target: Path) -> None:
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    # Its advice to run shape inference first, logged on the root logger: the model is already optimised.
    advice = _DropMessage("Please consider to run pre-processing")
    root.addFilter(advice)
    try:
        quantize_dynamic(str(fp32_graph), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.removeFilter(advice)
    # Word pieces of a real question, and a padded row: the twin must agree with its source on both.
    ids = np.array(
        [[101, 2054, 2003, 1996, 26828, 3199, 2005, 14108, 2951, 3688, 1029, 102], [101, 7592, 2088, 102] + [0] * 8]
    )
    feed = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    expected, got = (
        ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        for graph in (fp32_graph, target)
    )
    cosine = float((expected * got).sum(axis=1).min())
    if cosine < INT8_MIN_COSINE:
        raise RuntimeError(f"the int8 graph of {fp32_graph.parent} points elsewhere (cosine {cosine:.3f})")


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _write_manifest(graph: Path, identity: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The graph's manifest beside it (what `_valid` checks), both flushed to disk before the rename."""
    manifest = {**identity, "bytes": graph.stat().st_size, "sha256": _sha256(graph), "seconds": round(seconds, 2)}
    path = graph.parent / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2))
    for written in (graph, path):
        with written.open("rb") as f:
            os.fsync(f.fileno())
    return manifest


def _check_layout(model_dir: Path) -> None:
    """The export reproduces exactly Transformer -> mean Pooling -> Normalize; refuse anything else."""
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{model_dir}: modules {modules}, pooling {modes}; the ONNX export handles mean + normalize")


def _versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in _EXPORTERS}


def _cache_key(model_dir: Path) -> tuple[str, dict[str, str]]:
    source = {name: _sha256(model_dir / name) for name in _SOURCE_FILES}
    identity = {"recipe": RECIPE, "opset": OPSET, "versions": _versions(), "source": source}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(), source


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _valid(folder: Path, key: str) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        graph = folder / GRAPH_FILE
        return bool(
            manifest.get("key") == key
            and graph.stat().st_size == manifest.get("bytes")
            and _sha256(graph) == manifest.get("sha256")
        )
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes; the rename into place stays atomic without it."""
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: rely on the atomic rename alone
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_temps(models_dir: Path) -> None:
    """Temporary folders of crashed exports (a live export holds the lock, so only old ones are left)."""
    cutoff = time.time() - _STALE_TEMP_S
    for entry in models_dir.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


def _export(model_dir: Path, target: Path, key: str, source: dict[str, str], name: str) -> None:
    started = time.perf_counter()
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # Eager attention: the plain BERT graph, which every ONNX Runtime version runs; same numbers as sdpa.
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    sentence = _sentence_graph_class()(bert).eval()
    # Traced with a padded row, so the graph keeps the attention mask (transformers skips it when all ones
    # outside tracing; inside it never does, this is belt and braces).
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    sample = (ids, (ids != 0).long(), torch.zeros_like(ids))
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    with torch.no_grad():
        expected = sentence(*sample).numpy()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter's deprecation notice and the tracer's notes about Python branches
        # that are constant for this model (the mask and causality checks in transformers).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            sentence,
            sample,
            str(target),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=["sentence_embedding"],
            dynamic_axes={**dynamic, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    _check_against(target, sample, expected)
    identity = {
        "key": key,
        "recipe": RECIPE,
        "opset": OPSET,
        "versions": _versions(),
        "source": {"folder": str(model_dir), "sha256": source},
    }
    manifest = _write_manifest(target, identity, time.perf_counter() - started)
    log.info("exported %s to ONNX in %.1f s (%d MB)", name, manifest["seconds"], manifest["bytes"] >> 20)


def _check_against(graph: Path, sample: tuple[Any, ...], expected: Any) -> None:
    """Refuse to cache a graph whose vectors differ from torch's for the tracing sample."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(INPUT_NAMES, sample, strict=True)})[0]
    if got.shape != expected.shape or float(np.abs(got - expected).max()) > 1e-4:
        raise RuntimeError(f"the exported graph of {graph.parent} disagrees with torch")


def _sentence_graph_class() -> type[Any]:
    """Defined on export only: importing torch costs seconds and memory that running the graph never needs."""
    import torch

    class SentenceGraph(torch.nn.Module):
        """sentence-transformers' Pooling(mean) and Normalize after BERT, as one traceable module."""

        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=-1)

    return SentenceGraph
