"""Prometheus metrics of one app (`ApiMetrics`), exposed at /metrics.

Each app gets its own registry, so several apps in one process (tests) do not collide. With several
workers, `meshpilot serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start and /metrics
merges every worker's numbers; otherwise a scrape would see one random worker.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "meshpilot_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "meshpilot_http_request_duration_seconds",
            "Time to the response's first byte.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "meshpilot_http_requests_in_progress", "Requests being served.", registry=r, multiprocess_mode="livesum"
        )
        self.answers = Counter("meshpilot_answers", "Answers given, by groundedness.", ["grounded"], registry=r)
        self.rate_limited = Counter("meshpilot_rate_limited", "Requests refused by the per-key rate limit.", registry=r)
        self.webhooks = Counter(
            "meshpilot_webhook_deliveries",
            "GitHub webhook deliveries by event and outcome.",
            ["event", "status"],
            registry=r,
        )

    def render(self) -> bytes:
        if multiprocess_dir():
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
