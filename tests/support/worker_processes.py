"""Real ``gateway worker``-like processes for the sync tests (tests.support.sync_worker_proc):
start one, wait for it on real time, stop it, and the story every provider test tells,
a worker killed with SIGKILL after the provider stored the record and before the
ledger heard of it, then a new worker finishing the job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.jobs.models import Job

ROOT = Path(__file__).resolve().parent.parent.parent


async def spawn(app: Any, plugins: dict[str, Any], **gateway: Any) -> Any:
    """A worker process on ``app``'s database with these plugin settings."""
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
    return await start_worker(config)


async def start_worker(config: dict[str, Any]) -> Any:
    """``tests.support.sync_worker_proc`` with this ``plugins.toml``, as a dict."""
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


async def killed_once_stored(
    app: Any, plugins: dict[str, Any], stored: asyncio.Event, release: Callable[[], None]
) -> None:
    """A worker (1 s lease) runs the job until the provider has ``stored`` the record
    (the fake holds its answer back), then is killed with SIGKILL; ``release`` lets the
    fake answer again."""
    first = await spawn(app, plugins, job_lease_seconds=1)
    try:
        await asyncio.wait_for(stored.wait(), 30)
        first.send_signal(signal.SIGKILL)  # after the provider stored it, before the commit
        await first.wait()
    finally:
        release()


async def finished_by_a_new_worker(app: Any, plugins: dict[str, Any], handler: str) -> None:
    """A new worker takes the dead one's job once its lease runs out and finishes it."""
    second = await spawn(app, plugins, job_lease_seconds=1)
    try:

        async def finished() -> bool:
            return (await Job.get(handler=handler)).status == "succeeded"

        await until(finished)
    finally:
        await stop(second)
