"""Scheduler processes for real: a run whose process is killed is failed by lease
expiry and retried by the next ping; two ``gateway scheduler`` processes and a pinger
on PostgreSQL run each window once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from gateway.clock import Clock
from gateway.scheduling.models import TaskRun
from gateway.scheduling.runs import LEASE_EXPIRED
from tests.support.cron_plugin import SECRET, CronPlugin, bearer

ROOT = Path(__file__).resolve().parent.parent


async def spawn(app, tmp_path, mode, log, *extra, **settings):
    gs = app.extensions["gateway"].config.gateway
    base = {
        "data_dir": str(tmp_path / "data"),
        "database_url": gs.resolved_database_url,
        "auto_migrate": False,
        "public_url": "https://gateway.test",
        "cron_secret": SECRET,
        **settings,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.cron_proc",
        mode,
        json.dumps(base),
        log,
        *extra,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
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
            raise AssertionError("timed out waiting for the scheduler process")
        await asyncio.sleep(0.02)


async def test_a_run_whose_process_was_killed_fails_by_lease_expiry_and_is_retried(
    make_app, tmp_path, clock
):
    log = str(tmp_path / "runs.log")
    plugin = CronPlugin(tasks=("nightly",))
    app = await make_app(
        plugins={"crontest": {}},
        extra_plugins=[("crontest", plugin)],
        cron_secret=SECRET,
        cron_lease_seconds=60,
    )
    # `gateway cron run nightly` in another process, on the same (frozen) time.
    proc = await spawn(app, tmp_path, "run", log, clock.now().isoformat(), cron_lease_seconds=60)
    await wait_for(lambda: lines(log, "start"))
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    client = app.test_client()
    body = await (await client.get("/api/cron/nightly", headers=bearer())).get_json()
    assert (body["status"], body["outcome"]) == ("already_ran", "running")  # lease still on
    clock.advance(61)  # the dead process's lease ends
    body = await (await client.get("/api/cron/nightly", headers=bearer())).get_json()
    assert (body["status"], body["attempt"]) == ("succeeded", 2)
    dead, retry = await TaskRun.all().order_by("attempt")
    assert (dead.status, dead.detail, dead.trigger) == ("failed", LEASE_EXPIRED, "cli")
    assert (retry.status, retry.trigger) == ("succeeded", "http")
    assert dead.window_start == retry.window_start


@pytest.mark.postgres
async def test_two_scheduler_processes_and_a_pinger_run_each_window_once(make_app, tmp_path):
    log = str(tmp_path / "runs.log")
    app = await make_app(
        db="postgres",
        clock=Clock(),  # the processes run on the real clock: so does the pinger
        plugins={"crontest": {}},
        extra_plugins=[("crontest", CronPlugin(log, tasks=("every-second",)))],
        cron_secret=SECRET,
    )
    procs = [await spawn(app, tmp_path, "scheduler", log) for _ in range(2)]
    client = app.test_client()
    answers: Counter[str] = Counter()
    try:
        await wait_for(lambda: len(lines(log, "ready")) == 2)
        first = datetime.now().astimezone()
        deadline = time.monotonic() + 2.5  # two or three windows of one second
        while time.monotonic() < deadline:
            resp = await client.get("/api/cron/every-second", headers=bearer())
            answers[(await resp.get_json())["status"]] += 1
            await asyncio.sleep(0.05)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    ran = lines(log, "ran")
    per_window = Counter(window for _task, window, _pid, _trigger in ran)
    assert len(per_window) >= 2 and set(per_window.values()) == {1}  # each window once
    rows = await TaskRun.filter(window_start__gte=first).values_list("attempt", "status")
    assert rows and {a for a, _s in rows} == {1}
    assert answers["already_ran"] > 0  # the pinger met windows the tickers had taken
    runners = {pid for _task, _window, pid, _trigger in ran}
    assert runners & {str(p.pid) for p in procs}  # the tickers really competed
