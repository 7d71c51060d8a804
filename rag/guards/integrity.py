"""Pinned digests of the guards' model artifacts.

Threat model: supply chain and model poisoning (OWASP LLM03, LLM04). The injection classifier is a
file that can be swapped or edited after review (a poisoned model that never flags, a threshold set
to 1.0). Its SHA-256 digests are pinned in `artifacts.sha256`, next to the code that loads them and
reviewed with it; a file that is not pinned, or whose digest differs, is refused with a clear error.
`meshpilot guard train` is the one writer: it pins what it trains.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from rag.errors import MeshpilotError

PINS = "artifacts.sha256"


class ArtifactIntegrityError(MeshpilotError):
    pass


def pins_path() -> Path:
    return Path(str(resources.files("rag.guards").joinpath(PINS)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_pins(path: Path | None = None) -> dict[str, str]:
    path = path or pins_path()
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            pins[name.strip()] = digest
    return pins


def verify(files: list[Path], pins: Path | None = None) -> None:
    """Raise unless every file is pinned by name and has the pinned digest."""
    pinned = read_pins(pins)
    for file in files:
        expected = pinned.get(file.name)
        if expected is None:
            raise ArtifactIntegrityError(f"{file.name} is not pinned in {PINS}; refusing to load it")
        actual = sha256(file)
        if actual != expected:
            raise ArtifactIntegrityError(
                f"{file} has SHA-256 {actual[:12]}…, pinned {expected[:12]}…: refusing a modified artifact"
            )


def pin(files: list[Path], pins: Path | None = None) -> None:
    """Record the digests of freshly trained artifacts (replacing pins of the same names)."""
    path = pins or pins_path()
    pinned = read_pins(path)
    pinned.update({f.name: sha256(f) for f in files})
    header = "# SHA-256 of rag/guards/artifacts/*, written by `meshpilot guard train`; verified on every load.\n"
    path.write_text(header + "".join(f"{d}  {n}\n" for n, d in sorted(pinned.items())), encoding="utf-8")
