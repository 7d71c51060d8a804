"""guardrails-ai loads offline: no telemetry or spans, no NLTK fetch, ~/.guardrailsrc ignored, the guards running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, socket
# An operator's OpenTelemetry setup: guardrails would fill spans with every step's texts (and its time).
os.environ["OTEL_SDK_DISABLED"] = "false"
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
attempts = []
real = socket.socket.connect
def record(self, address):
    attempts.append(repr(address))
    raise OSError("network disabled in this test")
socket.socket.connect = record
import nltk
calls = []
nltk.download = lambda *a, **k: calls.append(a) or False
from rag.guards.runtime import guardrails
gr = guardrails()
from rag.guards.injection import InjectionDetector
from rag.guards.pipeline import GuardPipeline
guards = GuardPipeline(InjectionDetector.default())
for _ in range(3):
    assert guards.check_input("What is the freshness SLO of the orders product?").passed
    assert not guards.sanitize_output(["Write to jane.doe@gmail.com"]).passed
from guardrails.utils.hub_telemetry_utils import HubTelemetry
print(json.dumps({
    "enable_metrics": gr.settings.rc.enable_metrics,
    "remote": gr.settings.rc.use_remote_inferencing,
    "telemetry": HubTelemetry()._enabled,
    "connects": attempts,
    "downloads": len(calls),
    "spans": len(spans.get_finished_spans()),
}))
"""


def test_guardrails_runs_offline_whatever_the_users_rc_file_says(tmp_path: Path) -> None:
    rc = tmp_path / ".guardrailsrc"
    rc.write_text("enable_metrics=true\nuse_remote_inferencing=true\nid=someone\n", encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "enable_metrics": False,
        "remote": False,
        "telemetry": False,
        "connects": [],
        "downloads": 0,
        "spans": 0,
    }
    assert rc.read_text(encoding="utf-8").startswith("enable_metrics=true")  # the user's file is left alone
