"""Pinned artifacts: the packaged classifier loads; a modified, swapped or unpinned file is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.guards.injection import ARTIFACT, artifact_dir, load_model
from rag.guards.integrity import ArtifactIntegrityError, pin, read_pins, sha256, verify


def test_the_packaged_artifact_is_pinned_and_loads() -> None:
    pins = read_pins()
    files = [p for p in artifact_dir().iterdir() if p.is_file()]
    assert files and all(pins[f.name] == sha256(f) for f in files)
    assert load_model() is not None


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "artifacts"
    shutil.copytree(artifact_dir(), copy)
    return copy


def test_modified_weights_are_refused(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    assert load_model(ARTIFACT, copy) is not None  # an identical copy is fine
    weights = copy / f"{ARTIFACT}.npz"
    with np.load(weights) as arrays:
        changed = {k: -arrays[k] for k in arrays.files}
    np.savez(weights, **changed)
    with pytest.raises(ArtifactIntegrityError, match="refusing a modified artifact"):
        load_model(ARTIFACT, copy)


def test_a_threshold_that_never_flags_is_refused(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    meta = copy / f"{ARTIFACT}.json"
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["thresholds"] = {k: 1.0 for k in data["thresholds"]}
    meta.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ArtifactIntegrityError):
        load_model(ARTIFACT, copy)


def test_unpinned_files_are_refused_and_pinning_is_explicit(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(b"weights")
    pins = tmp_path / "pins.sha256"
    with pytest.raises(ArtifactIntegrityError, match="not pinned"):
        verify([other], pins)
    pin([other], pins)
    verify([other], pins)
    other.write_bytes(b"weights, poisoned")
    with pytest.raises(ArtifactIntegrityError):
        verify([other], pins)
