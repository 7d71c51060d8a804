"""Errors users see. Mapped to exit codes and HTTP bodies only at the edges (CLI, API)."""

from __future__ import annotations


class MeshpilotError(Exception):
    """Base of every error meant for a user: the message alone must say what went wrong and what to do."""

    code = "error"


class UsageError(MeshpilotError):
    """The caller asked for something invalid (bad argument, missing folder). CLI exit code 2."""

    code = "bad_request"


class DatabaseUnavailable(MeshpilotError):
    """The database cannot be reached or started. The message names the URL with its password masked."""

    code = "database_unavailable"


class EmbeddingModelMismatch(MeshpilotError):
    """A product was indexed with another embedding model than the one configured now."""

    code = "embedding_model_mismatch"


class ModelUnavailable(MeshpilotError):
    """A configured model endpoint failed or answered something unusable."""

    code = "model_unavailable"


class NotFound(MeshpilotError):
    code = "not_found"
