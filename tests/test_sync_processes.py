"""The sync engine with real worker processes: one killed with SIGKILL after HubSpot
created the call and before the ledger heard of it (a new worker finishes with the
marker search: one call), and two workers on PostgreSQL against HubSpot's limit of N
requests per second (never exceeded, no 429)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.jobs.models import Job
from gateway.sync.models import Effect
from tests.plugins.test_hubspot_crm import NAME, connected
from tests.support.fake_hubspot import FakeHubSpot, plugin_settings
from tests.support.sync_helpers import CALLER, analyzed_call
from tests.support.worker_processes import (
    finished_by_a_new_worker,
    killed_once_stored,
    spawn,
    stop,
    until,
)

HANDLER = f"{NAME}.log_call"


async def test_a_worker_killed_after_hubspot_answered_still_logs_one_call(make_app):
    async with FakeHubSpot() as hubspot:
        settings = plugin_settings(hubspot, search_lag_seconds=0)
        app = await make_app(plugins={NAME: settings})
        admin = await connected(app)
        hubspot.add_contact(firstname="Ada", phone=CALLER)
        await analyzed_call(app, admin.team.id)
        hold = hubspot.hold_after_create = asyncio.Event()  # created, the answer held back
        await killed_once_stored(app, {NAME: settings}, hubspot.created, hold.set)
        row = await Effect.get(action="log_call")
        assert (row.status, row.sent) == ("pending", True)
        job = await Job.get(handler=HANDLER)
        assert job.status == "running"  # the dead worker's lease, running out

        await finished_by_a_new_worker(app, {NAME: settings}, HANDLER)
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
