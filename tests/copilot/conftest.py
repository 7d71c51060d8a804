"""Copilot test fixtures."""

from __future__ import annotations

import warnings

# click 8.5 deprecates names that typer 0.19 (capped below 0.20 by guardrails-ai) imports at import
# time; under filterwarnings=error the first `run_cli` would fail on that, so typer is imported here once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import typer  # noqa: F401
