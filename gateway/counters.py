"""The Prometheus counters a process keeps (``GET /metrics`` renders them).

Each app has its own registry, so apps built side by side (tests) never share counts.
When ``PROMETHEUS_MULTIPROC_DIR`` is set before ``prometheus_client`` is first imported
(``gateway serve --workers N`` sets it for its worker processes, see
:mod:`gateway.serve_workers`), every increment is also written to a file of this
process in that directory, so a scrape answered by any worker sums them all
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
KEY = "gateway_counters"
WEBHOOK_OUTCOMES = (
    "received",
    "duplicate",
    "unauthorized",
    "too_large",
    "timed_out",
    "invalid",
    "failed",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class ProcessCounters:
    def __init__(self, sources: Iterable[str]) -> None:
        directory = multiprocess_dir()
        if directory:  # prometheus-client writes its files there and expects the directory
            Path(directory).mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.webhook_requests = Counter(
            "gateway_webhook_requests",
            "Webhook requests answered, by source and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.commits = Counter(
            "gateway_webhook_commits",
            "Transactions that stored webhooks (one per batch).",
            registry=r,
        )
        self.committed = Counter(
            "gateway_webhook_committed_deliveries",
            "Webhook deliveries stored; divided by commits, the mean batch size.",
            registry=r,
        )
        self.splits = Counter(
            "gateway_webhook_commit_splits",
            "Batches whose transaction failed and were retried one delivery at a time.",
            registry=r,
        )
        # Across processes: the largest of every process's largest batch.
        self.batch_max = Gauge(
            "gateway_webhook_commit_batch_max",
            "Largest number of deliveries stored in one transaction.",
            registry=r,
            multiprocess_mode="max",
        )
        # Every source and outcome is shown from the start, zeros included.
        for source in sources:
            for outcome in WEBHOOK_OUTCOMES:
                self.webhook_requests.labels(source, outcome)
        self._largest = 0

    def webhook(self, source: str, outcome: str) -> None:
        self.webhook_requests.labels(source, outcome).inc()

    def committed_batch(self, deliveries: int) -> None:
        self.commits.inc()
        self.committed.inc(deliveries)
        if deliveries > self._largest:
            self._largest = deliveries
            self.batch_max.set(deliveries)

    def split(self) -> None:
        self.splits.inc()


def counters(app: Any) -> ProcessCounters:
    """This app's counters, made on first use."""
    found = app.extensions.get(KEY)
    if found is None:
        sources = app.extensions["gateway"].registry("register_webhook_sources")
        found = app.extensions[KEY] = ProcessCounters(sorted(sources))
    return found
