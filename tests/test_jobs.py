"""The durable job queue: retries with backoff, dead-letter, per-handler isolation,
leases, and the in-process worker's prompt wake-up and clean shutdown."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from gateway.jobs import queue
from gateway.jobs.models import Job
from gateway.jobs.worker import Worker, run_pending_jobs
from tests.support.webhook_plugin import PATH, SECRET, TestPlugin, delivery


@pytest.fixture
def plugin() -> TestPlugin:
    return TestPlugin()


async def start(make_app, plugin, **kw):
    return await make_app(extra_plugins=[("testhooks", plugin)], **kw)


async def send(app, *events):
    body, headers = delivery(*events)
    response = await app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 200
    return response


async def flaky_job() -> Job:
    return await Job.get(handler="test.flaky")


async def test_failure_retries_with_backoff_then_dead_letters(make_app, plugin, clock):
    app = await start(make_app, plugin, job_backoff_base_seconds=10)
    plugin.fail_mode = "error"
    await send(app, {"id": "f1", "type": "thing.flaky"})
    assert await run_pending_jobs(app) == 2  # record succeeds, flaky fails once
    job = await flaky_job()
    assert (job.status, job.attempts) == ("pending", 1)
    delay = (job.run_at - clock.now()).total_seconds()
    assert 5 <= delay <= 15  # base 10s, +-50% jitter
    assert SECRET.decode() not in job.last_error and "ConnectionError" in job.last_error
    assert await run_pending_jobs(app) == 0  # not due yet: time has not moved
    clock.advance(16)
    assert await run_pending_jobs(app) == 1
    job = await flaky_job()
    assert job.attempts == 2
    assert 10 <= (job.run_at - clock.now()).total_seconds() <= 30  # doubled
    clock.advance(31)
    assert await run_pending_jobs(app) == 1
    job = await flaky_job()
    assert (job.status, job.attempts) == ("dead", 3)  # max_attempts=3 for this handler
    clock.advance(3600)
    assert await run_pending_jobs(app) == 0
    # The other handler ran once and was never repeated by its neighbour's failures.
    assert plugin.ran.count(("record", "f1")) == 1
    assert plugin.ran.count(("flaky", "f1")) == 3


async def test_retry_later_honours_the_providers_delay(make_app, plugin, clock):
    app = await start(make_app, plugin)
    plugin.fail_mode = "retry_later"
    await send(app, {"id": "r1", "type": "thing.flaky"})
    await run_pending_jobs(app)
    job = await flaky_job()
    assert job.status == "pending" and job.run_at == clock.now() + timedelta(seconds=30)
    clock.advance(29)
    assert await run_pending_jobs(app) == 0
    clock.advance(1)
    plugin.fail_mode = None
    assert await run_pending_jobs(app) == 1
    assert (await flaky_job()).status == "succeeded"


async def test_permanent_failure_dead_letters_at_once(make_app, plugin):
    app = await start(make_app, plugin)
    plugin.fail_mode = "permanent"
    await send(app, {"id": "p1", "type": "thing.flaky"})
    await run_pending_jobs(app)
    job = await flaky_job()
    assert (job.status, job.attempts) == ("dead", 1)
    assert "404 from provider" in job.last_error


async def test_expired_lease_is_reclaimed_and_the_stale_worker_cannot_finish(
    make_app, plugin, clock
):
    app = await start(make_app, plugin, job_lease_seconds=60)
    await send(app, {"id": "l1", "type": "thing.x"})
    gw = app.extensions["gateway"]
    settings = queue.QueueSettings.from_config(gw.config)
    # A worker claims the job and dies without a word.
    dead = await queue.claim("dead-worker", clock.now(), settings, gw.db.url)
    assert dead is not None and dead.attempts == 1
    assert await run_pending_jobs(app) == 0  # leased: nobody else may run it
    clock.advance(61)
    assert await run_pending_jobs(app) == 1
    job = await Job.get(id=dead.id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert plugin.ran == [("record", "l1")]
    # The dead worker coming back cannot overwrite the outcome.
    assert await queue.succeed(dead, clock.now()) is False
    assert await queue.fail(dead, clock.now(), "late", retry_in=1) == ""


async def test_job_whose_workers_keep_dying_is_dead_lettered(make_app, plugin, clock):
    app = await start(make_app, plugin, job_lease_seconds=60)
    await send(app, {"id": "k1", "type": "thing.flaky"})
    gw = app.extensions["gateway"]
    settings = queue.QueueSettings.from_config(gw.config)
    await Job.filter(handler="test.record").delete()
    for _ in range(3):  # max_attempts of test.flaky
        assert await queue.claim("dying", clock.now(), settings, gw.db.url) is not None
        clock.advance(61)
    assert await run_pending_jobs(app) == 1
    job = await flaky_job()
    assert job.status == "dead" and "lease expired" in job.last_error
    assert plugin.ran == []


async def test_in_process_worker_wakes_on_commit(make_app, plugin):
    # A 30 s poll: only the wake-up after the commit can start the handler this soon.
    app = await start(make_app, plugin, run_worker=True, job_poll_seconds=30)
    began = time.perf_counter()
    await send(app, {"id": "w1", "type": "thing.x"})
    await asyncio.wait_for(plugin.started.wait(), 5)
    assert time.perf_counter() - began < 1.0
    await app.extensions.pop("gateway_jobs_worker").stop()  # lets the running job finish
    assert (await Job.get(handler="test.record")).status == "succeeded"


@pytest.mark.parametrize("finishes_in_grace", [True, False])
async def test_shutdown_finishes_or_releases_its_job(make_app, plugin, finishes_in_grace):
    app = await start(
        make_app, plugin, run_worker=True, job_poll_seconds=30, job_shutdown_grace_seconds=0.3
    )
    plugin.block = asyncio.Event()
    await send(app, {"id": "s1", "type": "thing.x"})
    await asyncio.wait_for(plugin.started.wait(), 5)
    worker: Worker = app.extensions.pop("gateway_jobs_worker")
    stopping = asyncio.ensure_future(worker.stop())
    if finishes_in_grace:
        plugin.block.set()
    await asyncio.wait_for(stopping, 5)
    job = await Job.get(handler="test.record")
    if finishes_in_grace:
        assert (job.status, job.attempts) == ("succeeded", 1)
        assert plugin.ran == [("record", "s1")]
    else:
        # Given back at once, the interrupted attempt not counted: the next worker runs it.
        assert (job.status, job.attempts, job.locked_by) == ("pending", 0, None)
        assert plugin.ran == []
        plugin.block.set()
        assert await run_pending_jobs(app) == 1
        assert plugin.ran == [("record", "s1")]
