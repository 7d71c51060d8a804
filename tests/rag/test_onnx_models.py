"""MiniLM under ONNX Runtime: the same vectors as torch, and an export cache that survives crashes and races."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.embeddings import MiniLMEmbedder, MiniLMOnnxEmbedder, local_embedder, query_embedder
from rag.onnx_models import GRAPH_FILE, MANIFEST_FILE

ROOT = Path(__file__).resolve().parents[2]

LONG = "Retention of raw events is governed by the platform policy. " * 60  # ~600 word pieces


def _texts() -> list[str]:
    from evals.benchmarks.serve import golden_questions

    return [
        *golden_questions()[:12],
        LONG,
        LONG + " Anything past the 256th word piece is cut off, so this changes nothing.",
        "",
        " ",
        "?",
        "Ünïcödé naïve café: Größe, 東京のデータ製品, данные, بيانات 🚀🔒 — ½ ≥ ∑",
        "x" * 3000,  # one word past any vocabulary entry's length
    ]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str]]:
    """What the ONNX runtime gives when its cache folder cannot be made (a file is in the way), and the
    warnings it logged: torch, the reference for the comparisons below."""
    blocker = tmp_path_factory.mktemp("blocked") / "models"
    blocker.write_text("not a folder")
    records, logger = _Records(), logging.getLogger("rag.embeddings")
    logger.addHandler(records)
    try:
        model = local_embedder("onnx", blocker)
    finally:
        logger.removeHandler(records)
    return model, records.messages


@pytest.fixture
def torch_model(fallback: tuple[Any, list[str]]) -> MiniLMEmbedder:
    model = fallback[0]
    assert isinstance(model, MiniLMEmbedder)
    return model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Any, settings: Any) -> Path:
    """A copy of the session's export (the default embedder's), shared by this module's tests."""
    path = tmp_path_factory.mktemp("models") / "models"
    shutil.copytree(settings.models_dir, path)
    return path


def _folders(models_dir: Path, kind: str = "onnx") -> list[Path]:
    """Cache folders of one kind: "onnx" (the fp32 export) or "onnx-int8" (its quantized twin)."""
    name = re.compile(rf"all-MiniLM-L6-v2-{kind}-[0-9a-f]{{16}}")
    return [p for p in models_dir.iterdir() if p.is_dir() and name.fullmatch(p.name)]


def _folder(models_dir: Path, kind: str = "onnx") -> Path:
    [folder] = _folders(models_dir, kind)
    return folder


def test_the_default_embedder_runs_onnx(embedder: Any) -> None:
    assert isinstance(embedder, MiniLMOnnxEmbedder)
    assert (embedder.model_id, embedder.dimension) == ("sentence-transformers/all-MiniLM-L6-v2", 384)


@pytest.mark.slow
def test_onnx_vectors_equal_torch_vectors(embedder: Any, torch_model: MiniLMEmbedder) -> None:
    texts = _texts()
    onnx, reference = embedder.embed(texts), torch_model.embed(texts)
    assert onnx.dtype == np.float32 and onnx.shape == (len(texts), 384)
    assert float(np.abs(onnx - reference).max()) < 1e-5
    assert float((onnx * reference).sum(axis=1).min()) > 0.9999
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    # Truncated at 256 word pieces like sentence-transformers: text after that changes nothing.
    assert np.allclose(onnx[12], onnx[13], atol=1e-6)
    # A row's vector does not depend on the others in its batch (padding is masked out).
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert float(np.abs(alone - onnx).max()) < 1e-5


@pytest.mark.slow
def test_a_second_load_reuses_the_export(models_dir: Path) -> None:
    graph = _folder(models_dir) / GRAPH_FILE
    before = graph.stat()
    model = MiniLMOnnxEmbedder(models_dir)
    after = graph.stat()
    assert model.graph == graph
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(_folders(models_dir)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated graph", "altered byte", "no manifest"])
def test_a_damaged_cache_is_exported_again(models_dir: Path, tmp_path: Path, damage: str, embedder: Any) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    folder = _folder(copy)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    graph = folder / GRAPH_FILE
    if damage == "truncated graph":  # what a crash during a non-atomic write would leave
        with graph.open("r+b") as f:
            f.truncate(graph.stat().st_size // 2)
    elif damage == "altered byte":  # same size: only the checksum can tell
        with graph.open("r+b") as f:
            f.seek(graph.stat().st_size // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:
        (folder / MANIFEST_FILE).unlink()
    stale = copy / ".tmp-all-MiniLM-L6-v2-onnx-crashed"  # a crashed export's leftovers, hours old
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    model = MiniLMOnnxEmbedder(copy)
    assert model.graph == graph
    # Rebuilt, and the export is deterministic: the very bytes of the first one.
    assert hashlib.sha256(graph.read_bytes()).hexdigest() == manifest["sha256"]
    assert not stale.exists()
    assert [p.name for p in _folders(copy)] == [folder.name]
    assert not [p for p in copy.iterdir() if p.name.startswith((".tmp-", ".bad-"))]
    texts = _texts()[:4]
    assert float(np.abs(model.embed(texts) - embedder.embed(texts)).max()) < 1e-6


@pytest.mark.slow
def test_concurrent_processes_export_once(tmp_path: Path) -> None:
    code = (
        "import logging, sys; from pathlib import Path; logging.basicConfig(level=logging.INFO);"
        "from rag.embeddings import MiniLMOnnxEmbedder;"
        "print(MiniLMOnnxEmbedder(Path(sys.argv[1])).embed(['retention of raw events']).sum())"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    assert sum(err.decode().count("exported all-MiniLM-L6-v2 to ONNX") for _, err in outputs) == 1
    assert len({out.strip() for out, _ in outputs}) == 1
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [_folder(tmp_path).name]


def test_onnx_falls_back_to_torch_with_a_warning(fallback: tuple[Any, list[str]]) -> None:
    model, warnings = fallback
    assert isinstance(model, MiniLMEmbedder)
    assert any("running MiniLM with torch" in w for w in warnings)


def test_questions_run_on_an_int8_twin_that_points_where_fp32_points(embedder: Any, settings: Any) -> None:
    twin = query_embedder(settings, embedder)
    assert isinstance(twin, MiniLMOnnxEmbedder) and twin is not embedder
    assert (twin.precision, twin.model_id, twin.dimension) == ("int8", embedder.model_id, 384)
    assert query_embedder(settings, embedder) is twin  # built once
    folder = twin.graph.parent
    assert folder.name.startswith("all-MiniLM-L6-v2-onnx-int8-") and twin.graph.name == GRAPH_FILE
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["sha256"] == hashlib.sha256(twin.graph.read_bytes()).hexdigest()
    assert manifest["source"] == json.loads((embedder.graph.parent / MANIFEST_FILE).read_text())["sha256"]
    assert twin.graph.stat().st_size < embedder.graph.stat().st_size / 3  # int8 weights

    texts = _texts()
    fp32, int8 = embedder.embed(texts), twin.embed(texts)
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert float((fp32 * int8).sum(axis=1).min()) > 0.95
    # The nearest fp32 vector of each question's int8 vector is its own.
    questions = slice(0, 12)
    nearest = (int8[questions] @ fp32[questions].T).argmax(axis=1)
    assert nearest.tolist() == list(range(12))
    # Alone or among others, the same vector: activations are quantized per call, so each text runs alone.
    alone = np.stack([twin.embed([t])[0] for t in texts[:6]])
    assert np.array_equal(alone, int8[:6])

    fp32_settings = settings.model_copy(update={"query_embedding_precision": "fp32"})
    assert query_embedder(fp32_settings, embedder) is embedder


@pytest.mark.slow
def test_a_damaged_int8_graph_is_quantized_again(models_dir: Path, tmp_path: Path, embedder: Any) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    first = MiniLMOnnxEmbedder(copy, precision="int8")
    graph = first.graph
    digest = json.loads((graph.parent / MANIFEST_FILE).read_text())["sha256"]
    with graph.open("r+b") as f:
        f.truncate(graph.stat().st_size // 2)
    again = MiniLMOnnxEmbedder(copy, precision="int8")
    assert again.graph == graph and _folders(copy, "onnx-int8") == [graph.parent]
    assert hashlib.sha256(graph.read_bytes()).hexdigest() == digest  # quantization is deterministic
    texts = _texts()[:4]
    assert float((again.embed(texts) * embedder.embed(texts)).sum(axis=1).min()) > 0.95


def test_questions_stay_on_fp32_when_the_twin_cannot_be_built(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import rag.onnx_models

    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    model = MiniLMOnnxEmbedder(copy)

    def broken(*_args: Any, **_kwargs: Any) -> Path:
        raise RuntimeError("quantizer unavailable")

    monkeypatch.setattr(rag.onnx_models, "cached_int8_graph", broken)
    records, logger = _Records(), logging.getLogger("rag.embeddings")
    logger.addHandler(records)
    try:
        twin = query_embedder(settings, model)
    finally:
        logger.removeHandler(records)
    assert twin is model and model.precision == "fp32"
    assert any("questions run on fp32" in m for m in records.messages)
