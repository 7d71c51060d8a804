"""Errors of the copilot. Bad input is a `UsageError` (exit 2); everything else a `MeshpilotError` (exit 1)."""

from __future__ import annotations

from rag.errors import MeshpilotError, UsageError


class BadSource(UsageError):
    """The data source cannot be read as a table: missing, empty, header only, ragged rows, not UTF-8."""

    code = "bad_source"


class DraftRejected(MeshpilotError):
    """The validation loop ended without a valid draft; nothing was written."""

    code = "draft_rejected"


__all__ = ["BadSource", "DraftRejected", "MeshpilotError", "UsageError"]
