"""Core plugin: ``GET /metrics`` in the Prometheus text format.

Counters of what the gateway has taken in (webhooks by source and outcome, group
commits; kept by :mod:`gateway.counters`) and gauges read from the database at scrape
time (jobs by status, the age of the oldest due job, OAuth connections by provider and
status). One process (``gateway serve``, one worker) also shows its CPU and memory; with
``serve --workers N`` the counters are summed over the worker processes, whichever
answers the scrape (prometheus-client's multiprocess mode), and per-process figures are
left out. Every series carries ``replica`` (``[gateway] replica_name``, default the host
name). Readable by super admins, or with ``Authorization: Bearer <[gateway]
metrics_token>`` for a scraper.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from quart import Blueprint, Response, current_app, request
from tortoise.functions import Count

from gateway.auth.principal import bearer_token, require_super_admin
from gateway.contract import SIGNED_IN, Raw, api
from gateway.contract.schemes import METRICS_TOKEN
from gateway.counters import counters, multiprocess_dir
from gateway.jobs.models import PENDING, Job
from gateway.oauth.models import OAuthConnection
from hookspecs import hookimpl

bp = Blueprint("metrics", __name__)


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


def replica_name(config: Any) -> str:
    return config.gateway.replica_name or socket.gethostname()


def _labelled(families: Iterable[Metric], replica: str) -> Iterator[Metric]:
    """Each family again with ``replica`` on every sample. ``*_created`` samples are
    left out: the multiprocess mode has none, and one process alone should not differ."""
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {**sample.labels, "replica": replica}
            copy.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
        yield copy


def _process_families(app: Any) -> list[Metric]:
    """The counters: this process's, or every worker's summed from their files."""
    directory = multiprocess_dir()
    if directory:
        counters(app)  # this process's series exist (zeros) even before its first webhook
        return list(MultiProcessCollector(None, path=directory).collect())
    families = list(counters(app).registry.collect())
    return families + list(ProcessCollector(registry=None).collect())


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
@api(
    Raw("text/plain", "Prometheus text exposition format"),
    auth=(METRICS_TOKEN, *SIGNED_IN),
)
async def metrics() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    token = app.extensions["gateway"].config.gateway.metrics_token
    if token is None or not _bearer_matches(token.get_secret_value()):
        await require_super_admin()
    families = [*_process_families(app), *await _database_families(app)]
    replica = replica_name(app.extensions["gateway"].config)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(_labelled(families, replica)))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    return [bp]
