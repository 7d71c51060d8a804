"""Keep evaluation libraries offline: no analytics, no downloads of tokenizers or cost maps."""

from __future__ import annotations

import os


def disable_telemetry() -> None:
    # Set before ragas / langchain are imported: they read these at import time.
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
