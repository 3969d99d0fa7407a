"""Each role as its own process, stopped the way a platform stops it (SIGTERM):

- ``gateway serve`` (one process, and ``--workers 2`` under the gateway's supervisor)
  stops accepting connections, finishes a slow upload that was in flight (a signed
  ElevenLabs audio delivery still being sent) and exits 0;
- with ``--workers 2``, ``/metrics`` counts every webhook whichever worker took it or
  answers the scrape, and labels the replica;
- ``gateway worker`` with a job running gives the job back: claimable at once, the
  interrupted attempt not counted.

Real subprocesses on loopback; the waits are for other processes, bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from tests.conftest import truncate_postgres
from tests.support import slow_job_plugin
from tests.support.fake_elevenlabs import SECRET, AudioDelivery, headers, transcription
from tests.support.processes import Paused, Server, received_by_pid, until, worker_pids
from tests.support.webhook_plugin import PATH as TEST_PATH
from tests.support.webhook_plugin import TestPlugin, delivery
from tests.test_metrics import samples
from tests.test_plugins import make_dist

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SCRAPE_TOKEN = "scrape-token-for-process-tests-01"
ENV = {"TEST_ELEVENLABS_SECRET": SECRET, "TEST_METRICS_TOKEN": SCRAPE_TOKEN}


def serve_config(tmp_path: Path, database_url: str | None = None) -> Path:
    config = tmp_path / "plugins.toml"
    database = f'database_url = "{database_url}"\nauto_migrate = true' if database_url else ""
    config.write_text(
        f"""
[gateway]
data_dir = "{tmp_path / "data"}"
{database}
public_url = "https://gateway.test"
metrics_token = {{ env = "TEST_METRICS_TOKEN" }}
replica_name = "api-1"

[plugins.elevenlabs]
webhook_secret = {{ env = "TEST_ELEVENLABS_SECRET" }}
"""
    )
    return config


async def slow_upload(
    base: str, delivery: AudioDelivery, halfway: asyncio.Event, go: asyncio.Event
):
    """POST the delivery chunked: half of it, then (once told) the rest."""
    chunks = list(delivery.body_chunks())

    async def body():
        for i, chunk in enumerate(chunks):
            if i == len(chunks) // 2:
                halfway.set()
                await go.wait()
            yield chunk

    head = {"Content-Type": "application/json", "ElevenLabs-Signature": delivery.signature()}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/webhooks/elevenlabs", data=body(), headers=head) as r:
            return r.status, await r.text()


async def recording_row(database_url: str, external_id: str) -> tuple | None:
    """(status, sha256) of a recording row, read from the server's database."""
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as db:
            return db.execute(
                "SELECT status, sha256 FROM recordings WHERE external_id = ?", (external_id,)
            ).fetchone()
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT status, sha256 FROM recordings WHERE external_id = $1", external_id
        )
    finally:
        await conn.close()
    return tuple(row) if row else None


async def sigterm_during_an_upload(
    server: Server, database_url: str, name: str, *, to_the_group: bool = False
) -> None:
    delivery = AudioDelivery(name, audio_bytes=2_000_000, t=int(time.time()))
    halfway, go = asyncio.Event(), asyncio.Event()
    upload = asyncio.create_task(slow_upload(server.base, delivery, halfway, go))
    await asyncio.wait_for(halfway.wait(), 30)
    if to_the_group:  # every process of the server gets it, as from a terminal
        os.killpg(server.proc.pid, signal.SIGTERM)
    else:
        server.proc.send_signal(signal.SIGTERM)

    async def refusing() -> bool:
        return not await server.accepts()

    await until(refusing, "the server to stop accepting", timeout=30)
    assert server.proc.poll() is None  # still finishing the upload
    go.set()
    status, text = await asyncio.wait_for(upload, 30)
    assert (status, json.loads(text)) == (200, {"received": 1})
    assert await server.exited() == 0
    assert "Traceback" not in "".join(server.stderr)
    row = await recording_row(database_url, f"{name}:audio")
    assert row == ("stored", delivery.audio_digest())


async def test_sigterm_lets_one_process_finish_an_upload_in_flight(tmp_path):
    server = Server(serve_config(tmp_path), workers=1, env=ENV)
    try:
        await server.started()
        sqlite = f"sqlite://{tmp_path / 'data' / 'gateway.db'}"
        await sigterm_during_an_upload(server, sqlite, "conv_drain1")
    finally:
        server.stop()


@pytest.mark.postgres
async def test_two_workers_count_together_and_drain_on_sigterm(tmp_path, pg_database):
    """On PostgreSQL: two processes writing one SQLite file can fail a webhook with
    SQLITE_BUSY (a deferred transaction cannot wait to become a writer), which is not
    what this test is about."""
    metrics_dir = tmp_path / "metrics"
    env = {**ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = Server(serve_config(tmp_path, pg_database), workers=2, env=env)
    try:
        await server.started(serving=2)
        first, second = worker_pids(server.proc.pid)
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
        async with aiohttp.ClientSession(connector=connector) as http:

            async def post(n: int) -> None:
                t = int(time.time())
                body = transcription(f"conv_m{n}", t)
                url = f"{server.base}/api/webhooks/elevenlabs"
                async with http.post(url, data=body, headers=headers(body, t)) as response:
                    assert response.status == 200, await response.text()

            async def scrape() -> dict:
                auth = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
                async with http.get(f"{server.base}/metrics", headers=auth) as response:
                    assert response.status == 200
                    return samples(await response.text(), replica="api-1")

            with Paused(second):
                await asyncio.gather(*(post(n) for n in range(7)))
            with Paused(first):
                await asyncio.gather(*(post(n) for n in range(7, 12)))
            await asyncio.gather(*(post(n) for n in range(12, 20)))
            by_pid = received_by_pid(metrics_dir)
            assert by_pid[first] >= 7 and by_pid[second] >= 5, by_pid
            assert sum(by_pid.values()) == 20

            key = (
                "gateway_webhook_requests_total",
                (("outcome", "received"), ("source", "elevenlabs.webhook")),
            )
            scrapes = []
            for pid in (first, second):
                with Paused(pid):  # the other worker answers
                    scrapes.append(await scrape())
            scrapes += [await scrape() for _ in range(4)]
            for m in scrapes:
                assert m[key] == 20
                assert m[("gateway_webhook_committed_deliveries_total", ())] == 20
                assert not any(name.startswith("process_") for name, _ in m)

            # A worker killed outright is replaced; what it counted still counts.
            os.kill(first, signal.SIGKILL)

            async def replaced() -> bool:
                pids = worker_pids(server.proc.pid)
                return len(pids) == 2 and first not in pids

            await until(replaced, "a new worker")
            await server.started(serving=3)  # the replacement serves
            with Paused(second):  # the new worker answers
                await post(20)
                assert (await scrape())[key] == 21
        # To the whole group: the workers leave stopping to the supervisor.
        await sigterm_during_an_upload(server, pg_database, "conv_drain2", to_the_group=True)
    finally:
        server.stop()
        await truncate_postgres(pg_database)


# -- gateway worker -------------------------------------------------------------------


async def test_sigterm_on_a_worker_gives_its_running_job_back(make_app, tmp_path, clock):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "slowjob-plugin", {}, {"slowjob": "tests.support.slow_job_plugin"})
    marker, log = tmp_path / "go", tmp_path / "runs.log"
    table = {"marker": str(marker), "log": str(log)}
    clock.set(datetime.now(UTC))  # the worker process reads the real time
    app = await make_app(
        plugins={"testhooks": {}, "slowjob": table},
        extra_plugins=[("testhooks", TestPlugin()), ("slowjob", slow_job_plugin)],
    )
    gs = app.extensions["gateway"].config.gateway
    config = tmp_path / "worker.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "{gs.data_dir}"
database_url = "{gs.resolved_database_url}"
job_poll_seconds = 0.05
job_shutdown_grace_seconds = 0.2

[plugins.slowjob]
marker = "{marker}"
log = "{log}"
"""
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    worker = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body, head = delivery({"id": "j1", "type": "slow.x"})
        assert (await app.test_client().post(TEST_PATH, data=body, headers=head)).status_code == 200

        async def running() -> bool:
            if worker.poll() is not None:
                raise AssertionError(worker.stderr.read().decode())
            return log.exists() and log.read_text().startswith("start j1")

        await until(running, "the worker to start the job")
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert b"Traceback" not in worker.stderr.read()
    job = await Job.get(handler=slow_job_plugin.HANDLER)
    assert (job.status, job.attempts, job.locked_by) == ("pending", 0, None)
    assert job.run_at <= datetime.now(UTC)  # claimable at once, not after a lease
    assert "done" not in log.read_text()

    marker.touch()
    clock.set(datetime.now(UTC))
    assert await run_pending_jobs(app) == 1
    job = await Job.get(id=job.id)
    assert (job.status, job.attempts) == ("succeeded", 1)
