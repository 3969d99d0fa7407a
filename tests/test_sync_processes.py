"""The sync engine with real worker processes: one killed with SIGKILL after HubSpot
created the call and before the ledger heard of it (a new worker finishes with the
marker search: one call), and two workers on PostgreSQL against HubSpot's limit of N
requests per second (never exceeded, no 429)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.jobs.models import Job
from gateway.sync.models import Effect
from tests.plugins.test_hubspot_crm import NAME, connected
from tests.support.fake_hubspot import FakeHubSpot, plugin_settings
from tests.support.sync_helpers import CALLER, analyzed_call

ROOT = Path(__file__).resolve().parent.parent
HANDLER = f"{NAME}.log_call"


async def spawn(app: Any, plugins: dict[str, Any], **gateway: Any) -> Any:
    gs = app.extensions["gateway"].config.gateway
    config = {
        "gateway": {
            "data_dir": str(gs.data_dir),
            "database_url": gs.resolved_database_url,
            "auto_migrate": False,
            "public_url": "https://gateway.test",
            "job_poll_seconds": 0.05,
            **gateway,
        },
        "plugins": plugins,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sync_worker_proc",
        json.dumps(config),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def until(predicate: Any, timeout: float = 30.0) -> None:
    """Wait for another process (real time: it is not on our clock)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker process")
        await asyncio.sleep(0.05)


async def stop(worker: Any) -> None:
    if worker.returncode is None:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 20) == 0


async def test_a_worker_killed_after_hubspot_answered_still_logs_one_call(make_app):
    async with FakeHubSpot() as hubspot:
        settings = plugin_settings(hubspot, search_lag_seconds=0)
        app = await make_app(plugins={NAME: settings})
        admin = await connected(app)
        hubspot.add_contact(firstname="Ada", phone=CALLER)
        await analyzed_call(app, admin.team.id)
        hubspot.hold_after_create = asyncio.Event()  # created, the answer held back
        first = await spawn(app, {NAME: settings}, job_lease_seconds=1)
        try:
            await asyncio.wait_for(hubspot.created.wait(), 30)
            first.send_signal(signal.SIGKILL)  # after HubSpot stored it, before the commit
            await first.wait()
        finally:
            hubspot.hold_after_create.set()
        row = await Effect.get(action="log_call")
        assert (row.status, row.sent) == ("pending", True)
        job = await Job.get(handler=HANDLER)
        assert job.status == "running"  # the dead worker's lease, running out

        second = await spawn(app, {NAME: settings}, job_lease_seconds=1)
        try:

            async def finished() -> bool:
                return (await Job.get(id=job.id)).status == "succeeded"

            await until(finished)
        finally:
            await stop(second)
        assert len(hubspot.engagements) == 1
        assert len(hubspot.requests_to("/crm/v3/objects/calls")) == 1
        assert len(hubspot.requests_to("/crm/v3/objects/calls/search")) == 1
        row = await Effect.get(id=row.id)
        assert (row.status, row.provider_id) == ("done", next(iter(hubspot.engagements)))


@pytest.mark.postgres
async def test_two_workers_on_postgres_never_exceed_hubspots_limit(make_app):
    limit, calls = 8, 20
    async with FakeHubSpot() as hubspot:
        settings = plugin_settings(
            hubspot, burst_limit=limit, burst_window_seconds=1, search_limit=limit
        )
        app = await make_app(db="postgres", plugins={NAME: settings})
        admin = await connected(app)
        hubspot.rate_limit = (limit, 1.0)  # HubSpot's own count: 429 beyond it
        for n in range(calls):
            contact = hubspot.add_contact(firstname=f"C{n}", phone=f"+1415555{n:04d}")
            known = {"contact": {"source": NAME, "id": contact}}
            await analyzed_call(
                app, admin.team.id, f"conv_{n}", caller=f"+1415555{n:04d}", personalization=known
            )
        started = time.monotonic()
        workers = [await spawn(app, {NAME: settings}, job_concurrency=4) for _ in range(2)]
        try:

            async def drained() -> bool:
                return await Job.filter(handler=HANDLER, status="succeeded").count() == calls

            await until(drained, timeout=60)
        finally:
            for worker in workers:
                await stop(worker)
        elapsed = time.monotonic() - started
        assert len(hubspot.engagements) == calls
        assert hubspot.throttled == 0 and hubspot.max_in_window(1.0) <= limit
        # Paced, not serialised: close to calls / limit seconds.
        assert elapsed >= (calls / limit) - 1
        assert await Job.filter(handler=HANDLER, attempts__gt=1).count() == 0
