"""Uploaded files staged as a folder (`StagedUpload`) for ingestion, with names made safe first.

A file name may carry a relative path (`runbooks/backfill.md`) so a folder can be uploaded as is;
absolute paths, `..`, empty or hidden parts and control characters are refused, so nothing is ever
written outside the staging folder.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from starlette.datastructures import UploadFile

from rag.documents import SUPPORTED_SUFFIXES
from rag.errors import UsageError

MAX_DEPTH = 16


def safe_relative_path(name: str) -> PurePosixPath:
    """The upload's name as a relative path, or UsageError saying why not."""
    raw = name.replace("\\", "/")
    parts = raw.split("/")
    if not raw or raw.startswith("/") or len(parts) > MAX_DEPTH:
        raise UsageError(f"unsafe file name {name!r}: use a relative path such as docs/guide.md")
    for part in parts:
        bad = not part or part in (".", "..") or part.startswith(".") or len(part.encode()) > 255
        if bad or any(ord(ch) < 32 or ch == "\x7f" for ch in part):
            raise UsageError(f"unsafe file name {name!r}: empty, hidden, '..' or control characters in a part")
    return PurePosixPath(*parts)


@dataclass
class StagedUpload:
    folder: Path
    unsupported: list[str] = field(default_factory=list)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


async def stage(files: list[UploadFile]) -> StagedUpload:
    """Write the uploads into a fresh temporary folder; the caller closes it."""
    staged = StagedUpload(Path(tempfile.mkdtemp(prefix="meshpilot-upload-")))
    try:
        seen: set[PurePosixPath] = set()
        for upload in files:
            rel = safe_relative_path(upload.filename or "")
            if rel in seen:
                raise UsageError(f"the file {rel} is uploaded twice")
            seen.add(rel)
            if rel.suffix.lower() not in SUPPORTED_SUFFIXES:
                staged.unsupported.append(str(rel))
                continue
            target = staged.folder.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(await upload.read())
    except BaseException:
        staged.close()
        raise
    return staged
