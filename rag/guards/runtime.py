"""guardrails-ai, loaded offline: the framework every boundary guard's validator is written for.

Threat model: the guard library itself. guardrails-ai 0.11 downloads NLTK's punkt at import, sends
OpenTelemetry traces to a vendor endpoint unless `~/.guardrailsrc` says otherwise, and a `Guard`
keeps the last ten calls (with their texts) in memory and, by default, validates on an asyncio loop
it sets up itself (uvloop policy, "event loop already running" inside servers). This module imports
it with all of that off, its OpenTelemetry spans too, without touching the user's home directory:
metrics and remote inferencing are disabled in guardrails' settings object before any validator
exists. The pipeline calls validators without a `Guard` (rag/guards/pipeline.py); the history and
sync settings hold for any Guard built on them.
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from types import ModuleType
from typing import Any


@cache
def guardrails() -> ModuleType:
    """The guardrails package, imported once with telemetry and downloads off."""
    os.environ["GUARD_HISTORY_ENABLED"] = "false"
    os.environ["GUARDRAILS_RUN_SYNC"] = "true"  # ~2 ms a call instead of ~4-16 ms on a fresh loop
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    import nltk

    download = nltk.download
    nltk.download = _no_download  # its import-time punkt download would reach the internet
    try:
        with warnings.catch_warnings():
            # Its CLI module, imported by the package, trips typer's deprecations: not our code.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import guardrails as gr
            from guardrails.classes.rc import RC
    finally:
        nltk.download = download
    gr.settings.rc = RC(enable_metrics=False, use_remote_inferencing=False)
    # Its OpenTelemetry spans are built and filled even with no exporter: every step's inputs and outputs
    # serialised to JSON attributes, 60 % of a guard call's time here (three guards: 4.4 -> 1.7 ms).
    gr.settings.disable_tracing = True
    module: ModuleType = gr
    return module


def _no_download(*_args: Any, **_kwargs: Any) -> bool:
    return False
