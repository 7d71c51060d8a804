"""Prompt-injection detection: phrase heuristics plus a small classifier on the text's embedding.

Threat model: a user (direct) or a document the service retrieves (indirect) tries to make the
model drop its instructions, adopt another role, reveal its system prompt, or run an attacker's
task, possibly disguised (encodings, homoglyphs, zero-width characters, other languages).
Heuristics catch the well-known phrasings in every reading of the text (rag/guards/normalize.py);
the classifier (logistic regression on MiniLM embeddings, trained on labelled public data by
`meshpilot guard train`, versioned in rag/guards/artifacts/) catches paraphrases. The embedding is
the one retrieval already computed when there is one. An allowlist of benign data-engineering
phrasings ("ignore nulls", "drop column", "override the SLO") keeps the classifier from flagging
them; it never overrides a heuristic hit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from rag.guards.normalize import normalise, views

ARTIFACT = "injection-v1"

_PATTERNS: dict[str, list[str]] = {
    "prompt_injection": [
        r"\b(ignore|disregard|forget|skip|bypass|override)\b.{0,40}\b(previous|prior|above|earlier|preceding|"
        r"all|any|your|system|original)\b.{0,30}\b(instructions?|rules|directions|prompts?|guidelines|"
        r"directives|constraints|programming)\b",
        r"\bnew (instructions|rules|task)\s*[:\-]",
        r"\b(from now on|henceforth),? you (are|will|must)\b",
        r"\byou are (now|no longer)\b.{0,40}\b(ai|assistant|model|bot|dan|free|unrestricted|jailbroken)\b",
        r"\b(act|pretend|behave) as (an? )?(unrestricted|unfiltered|jailbroken|evil|dan)\b",
        r"\b(developer|god|jailbreak|dan) mode\b",
        r"\bdo anything now\b",
        r"\b(stop|cease) following (your|the) (rules|instructions|guidelines)\b",
        r"\binstead,? (say|respond|reply|answer|output|print)\b",
        r"ignora (todas )?(las )?instrucciones (anteriores|previas)",
        r"ignorez? (toutes )?(les )?(instructions|consignes) (precedentes|précédentes|ci-dessus)",
        r"ignorier(e|en sie)? (alle )?(vorherigen|bisherigen|obigen) (anweisungen|instruktionen)",
        r"ignora (tutte )?le istruzioni precedenti",
        r"ignore (todas )?as instru[cç][oõ]es anteriores",
        r"игнорируй(те)? (все )?(предыдущие|прежние) (инструкции|указания)",
        r"忽略(之前|以上|前面)的?(所有)?(指令|指示|说明)",
    ],
    "system_prompt_extraction": [
        r"\b(reveal|show|print|repeat|output|display|leak|dump|tell me|give me|what (is|are|was))\b.{0,30}"
        r"\b(system|initial|hidden|original|secret|developer) (prompt|instructions|message|rules)\b",
        r"\brepeat (everything|all|the text|the words) (above|before|so far)\b",
        r"\b(your|the) (instructions|prompt) (verbatim|word for word)\b",
    ],
    "encoded_payload": [],  # set when a decoded payload (base64, hex, rot13) is itself flagged
}
_COMPILED = {cat: [re.compile(p) for p in pats] for cat, pats in _PATTERNS.items()}


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float
    categories: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LinearModel:
    """Logistic regression over an L2-normalised embedding."""

    weights: npt.NDArray[np.float32]
    bias: float
    threshold: float
    embedding_model: str
    metadata: dict[str, Any]

    def probability(self, vector: npt.NDArray[np.float32]) -> float:
        return float(1.0 / (1.0 + np.exp(-(float(np.dot(self.weights, vector)) + self.bias))))


def artifact_dir() -> Path:
    return Path(str(resources.files("rag.guards").joinpath("artifacts")))


def load_model(name: str = ARTIFACT, directory: Path | None = None) -> LinearModel | None:
    folder = directory or artifact_dir()
    weights, meta = folder / f"{name}.npy", folder / f"{name}.json"
    if not weights.exists() or not meta.exists():
        return None
    metadata = json.loads(meta.read_text(encoding="utf-8"))
    return LinearModel(
        weights=np.load(weights).astype(np.float32),
        bias=float(metadata["bias"]),
        threshold=float(metadata["threshold"]),
        embedding_model=str(metadata["embedding_model"]),
        metadata=metadata,
    )


def save_model(model: LinearModel, name: str = ARTIFACT, directory: Path | None = None) -> None:
    folder = directory or artifact_dir()
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", model.weights.astype(np.float32))
    meta = {
        **model.metadata,
        "bias": model.bias,
        "threshold": model.threshold,
        "embedding_model": model.embedding_model,
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def allowlist() -> list[re.Pattern[str]]:
    data = yaml.safe_load(resources.files("rag.guards").joinpath("allowlist.yaml").read_text(encoding="utf-8"))
    return [re.compile(p) for p in data["benign_patterns"]]


def heuristic_categories(text: str) -> list[str]:
    """Categories whose patterns match the text or any payload decoded from it."""
    readings = views(text)
    found: list[str] = []
    for i, reading in enumerate(readings):
        for category, patterns in _COMPILED.items():
            if any(p.search(reading) for p in patterns):
                found.append(category if i <= 1 else "encoded_payload")  # 0, 1: the text itself
                if i > 1 and category not in found:
                    found.append(category)
    return list(dict.fromkeys(found))


class InjectionDetector:
    def __init__(self, model: LinearModel | None = None) -> None:
        self.model = model

    @classmethod
    def default(cls) -> InjectionDetector:
        return cls(load_model())

    def check(self, text: str, vector: npt.NDArray[np.float32] | None = None) -> Verdict:
        categories = heuristic_categories(text)
        if categories:
            return Verdict(True, 1.0, categories)
        if self.model is None or vector is None:
            return Verdict(False, 0.0, [])
        score = self.model.probability(vector)
        if score >= self.model.threshold and any(p.search(normalise(text)) for p in allowlist()):
            return Verdict(False, round(min(score, self.model.threshold - 1e-3), 4), ["allowlisted"])
        flagged = score >= self.model.threshold
        return Verdict(flagged, round(score, 4), ["prompt_injection"] if flagged else [])
