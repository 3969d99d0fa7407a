"""Worker processes for real: killed with SIGKILL mid-job, and two of them racing on
PostgreSQL. Workers run ``gateway.jobs.cli.run_worker_process`` (what ``gateway worker``
runs) in subprocesses; their handler appends start/done lines to a shared file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.jobs.models import Job
from tests.support.webhook_plugin import PATH, TestPlugin, delivery
from tests.support.worker_proc import ProcPlugin

ROOT = Path(__file__).resolve().parent.parent


async def start_app(make_app, tmp_path, db="sqlite"):
    log = str(tmp_path / "runs.log")
    app = await make_app(
        db=db,
        plugins={"testhooks": {}, "proc": {}},
        extra_plugins=[("testhooks", TestPlugin()), ("proc", ProcPlugin(log))],
    )
    return app, log


async def spawn(app, tmp_path, log, marker="-", work=0.0, **settings):
    gs = app.extensions["gateway"].config.gateway
    base = {
        "data_dir": str(tmp_path / "data"),
        "database_url": gs.resolved_database_url,
        "auto_migrate": False,
        "public_url": "https://gateway.test",
        "job_poll_seconds": 0.05,
        **settings,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.worker_proc",
        json.dumps(base),
        log,
        marker,
        str(work),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def lines(log: str, kind: str) -> list[list[str]]:
    if not os.path.exists(log):
        return []
    with open(log) as fh:
        return [ln.split()[1:] for ln in fh.read().splitlines() if ln.startswith(kind + " ")]


async def wait_for(predicate, timeout: float = 20.0) -> None:
    """Wait for another process to do something (real time: it is not on our clock)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker process")
        await asyncio.sleep(0.02)


async def post(app, *events):
    body, headers = delivery(*events)
    response = await app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 200


async def test_worker_killed_mid_job_restarts_and_the_job_completes_once(make_app, tmp_path):
    app, log = await start_app(make_app, tmp_path)
    marker = str(tmp_path / "go")
    # A one-second lease, renewed by the heartbeat while the worker lives.
    first = await spawn(app, tmp_path, log, marker, job_lease_seconds=1)
    await wait_for(lambda: lines(log, "ready"))
    await post(app, {"id": "k1", "type": "proc.x"})  # committed ...
    await wait_for(lambda: lines(log, "start"))  # ... claimed, handler running
    first.send_signal(signal.SIGKILL)
    await first.wait()
    job = await Job.get(handler="proc.record")
    assert (job.status, job.attempts) == ("running", 1)  # the dead worker's lease
    Path(marker).touch()
    second = await spawn(app, tmp_path, log, marker, job_lease_seconds=1)
    try:
        await wait_for(lambda: lines(log, "done"))
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0  # a clean shutdown
    done = lines(log, "done")
    assert len(done) == 1 and done[0][0] == "k1"
    assert done[0][1] == str(second.pid)
    job = await Job.get(id=job.id)
    assert (job.status, job.attempts) == ("succeeded", 2)


@pytest.mark.postgres
async def test_two_worker_processes_on_postgres_never_run_a_job_twice(make_app, tmp_path):
    app, log = await start_app(make_app, tmp_path, db="postgres")
    workers = [await spawn(app, tmp_path, log, work=0.02, job_concurrency=4) for _ in range(2)]
    try:
        await wait_for(lambda: len(lines(log, "ready")) == 2)
        n = 80
        for batch in range(4):
            await post(app, *({"id": f"j{batch}-{i}", "type": "proc.x"} for i in range(n // 4)))
        await wait_for(lambda: len(lines(log, "done")) >= n, timeout=30)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            assert await asyncio.wait_for(w.wait(), 20) == 0
    starts = Counter(parts[0] for parts in lines(log, "start"))
    assert len(starts) == n and set(starts.values()) == {1}  # each job started once
    assert len(lines(log, "done")) == n
    pids = Counter(parts[1] for parts in lines(log, "done"))
    assert set(pids) == {str(w.pid) for w in workers}  # both really competed
    assert await Job.filter(status="succeeded").count() == n
    assert await Job.filter(attempts__gt=1).count() == 0


@pytest.mark.postgres
async def test_worker_process_on_postgres_is_woken_by_notify_not_its_poll(make_app, tmp_path):
    """Another process commits a job: the worker hears NOTIFY and runs it at once, with
    a poll interval (five minutes) far longer than the test may take."""
    app, log = await start_app(make_app, tmp_path, db="postgres")
    worker = await spawn(app, tmp_path, log, job_poll_seconds=300)
    try:
        await wait_for(lambda: lines(log, "listening"))
        await post(app, {"id": "n1", "type": "proc.x"})
        await wait_for(lambda: lines(log, "done"), timeout=15)
        # The listening connection drops (a database restart, a proxy timing out): the
        # worker reconnects, and a job committed meanwhile is not left for the poll.
        from tortoise import connections

        _, killed = await connections.get("default").execute_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        assert len(killed) == 1
        await post(app, {"id": "n2", "type": "proc.x"})
        await wait_for(lambda: len(lines(log, "done")) == 2, timeout=15)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 20) == 0
    assert [d[0] for d in lines(log, "done")] == ["n1", "n2"]
