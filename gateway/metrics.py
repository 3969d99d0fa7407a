"""Core plugin: ``GET /metrics`` in the Prometheus text format.

Counters of what this process has taken in (webhooks by source and outcome, group
commits) and gauges read from the database at scrape time (jobs by status, the age of
the oldest due job, OAuth connections by provider and status), plus the process's CPU
and memory. Readable by super admins, or with ``Authorization: Bearer
<[gateway] metrics_token>`` for a scraper.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from quart import Blueprint, Response, current_app, request
from tortoise.functions import Count

from gateway.auth.principal import bearer_token, require_super_admin
from gateway.jobs.models import PENDING, Job
from gateway.oauth.models import OAuthConnection
from hookspecs import hookimpl

bp = Blueprint("metrics", __name__)

WEBHOOK_OUTCOMES = (
    "received",
    "duplicate",
    "unauthorized",
    "too_large",
    "timed_out",
    "invalid",
    "failed",
)


class _Snapshot:
    """A collector that yields metric families computed before rendering (the
    database gauges need ``await``, collectors are synchronous)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _bearer_matches(token: str) -> bool:
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given, token)


def _webhook_families(app: Any) -> list[Metric]:
    from gateway.webhooks.ingest import group_commit, stats

    requests = CounterMetricFamily(
        "gateway_webhook_requests",
        "Webhook requests this process answered, by source and outcome.",
        labels=["source", "outcome"],
    )
    counters = stats(app)
    for source in sorted(app.extensions["gateway"].registry("register_webhook_sources")):
        per_source = counters.get(source, {})
        for outcome in WEBHOOK_OUTCOMES:
            requests.add_metric([source, outcome], per_source.get(outcome, 0))
    commits = group_commit(app).counters
    return [
        requests,
        CounterMetricFamily(
            "gateway_webhook_commits",
            "Transactions that stored webhooks (one per batch).",
            value=commits["transactions"],
        ),
        CounterMetricFamily(
            "gateway_webhook_committed_deliveries",
            "Webhook deliveries stored; divided by commits, the mean batch size.",
            value=commits["deliveries"],
        ),
        CounterMetricFamily(
            "gateway_webhook_commit_splits",
            "Batches whose transaction failed and were retried one delivery at a time.",
            value=commits["split"],
        ),
        GaugeMetricFamily(
            "gateway_webhook_commit_batch_max",
            "Largest number of deliveries stored in one transaction.",
            value=commits["largest"],
        ),
    ]


async def _database_families(app: Any) -> list[Metric]:
    now = app.extensions["gateway"].clock.now()
    jobs = GaugeMetricFamily(
        "gateway_jobs", "Jobs in the queue, by status (all processes).", labels=["status"]
    )
    rows = await Job.all().group_by("status").annotate(n=Count("id")).values("status", "n")
    for row in sorted(rows, key=lambda r: r["status"]):
        jobs.add_metric([row["status"]], row["n"])
    oldest = (
        await Job.filter(status=PENDING, run_at__lte=now)
        .order_by("run_at")
        .first()
        .values_list("run_at", flat=True)
    )
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    connections = GaugeMetricFamily(
        "gateway_oauth_connections",
        "Teams' provider connections, by provider and status.",
        labels=["provider", "status"],
    )
    rows = (
        await OAuthConnection.all()
        .group_by("provider", "status")
        .annotate(n=Count("id"))
        .values("provider", "status", "n")
    )
    for row in sorted(rows, key=lambda r: (r["provider"], r["status"])):
        connections.add_metric([row["provider"], row["status"]], row["n"])
    return [
        jobs,
        GaugeMetricFamily(
            "gateway_jobs_oldest_due_seconds",
            "How long the oldest due job has been waiting for a worker (0: none).",
            value=max(lag, 0.0),
        ),
        connections,
    ]


@bp.get("/metrics")
async def metrics() -> Response:
    app = current_app._get_current_object()
    token = app.extensions["gateway"].config.gateway.metrics_token
    if token is None or not _bearer_matches(token.get_secret_value()):
        await require_super_admin()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([*_webhook_families(app), *await _database_families(app)]))
    ProcessCollector(registry=registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    return [bp]
