"""A job's attempt history: every failed attempt's time and error stays visible in the
jobs API and ``gateway jobs --show``, also after a dead job is retried, and the log line
of a dead job says why it died."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from gateway.cli import main
from gateway.jobs import queue
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from tests.support.identity import make_user, token_for
from tests.support.webhook_plugin import PATH, TestPlugin, delivery


async def failing_job(app: Any, plugin: TestPlugin) -> int:
    plugin.fail_mode = "error"
    body, headers = delivery({"id": "h1", "type": "thing.flaky"})
    assert (await app.test_client().post(PATH, data=body, headers=headers)).status_code == 200
    return (await Job.get(handler="test.flaky")).id


async def run_until_settled(app: Any, clock: Any) -> None:
    for _ in range(5):
        await run_pending_jobs(app)
        clock.advance(3600)


async def test_history_survives_a_retry_in_the_api(make_app, db_kind, clock, caplog):
    plugin = TestPlugin()
    app = await make_app(db=db_kind, extra_plugins=[("testhooks", plugin)])
    job_id = await failing_job(app, plugin)
    started = clock.now()
    caplog.set_level(logging.INFO, logger="gateway.jobs")
    await run_until_settled(app, clock)

    headers = await token_for(await make_user("root@example.com", super_admin=True))
    client = app.test_client()
    job = await (await client.get(f"/api/jobs/{job_id}", headers=headers)).get_json()
    assert job["status"] == "dead"
    history = job["history"]
    assert [(h["attempt"], h["outcome"]) for h in history] == [
        (1, "retry"),
        (2, "retry"),
        (3, "dead"),
    ]
    assert all("ConnectionError" in h["error"] for h in history)
    assert history[0]["at"] == started.isoformat()  # the gateway clock's time
    assert history[0]["at"] < history[1]["at"] < history[2]["at"]
    assert any(
        "dead after attempt 3/3 (no attempts left): ConnectionError" in r.getMessage()
        for r in caplog.records
    )

    plugin.fail_mode = "permanent"
    response = await client.post(f"/api/jobs/{job_id}/retry", headers=headers)
    assert response.status_code == 202
    assert (await response.get_json())["history"][-1]["outcome"] == "requeued"
    await run_until_settled(app, clock)
    job = await (await client.get(f"/api/jobs/{job_id}", headers=headers)).get_json()
    assert [h["outcome"] for h in job["history"]] == ["retry", "retry", "dead", "requeued", "dead"]
    assert "404 from provider" in job["history"][-1]["error"]
    assert job["last_error"] == job["history"][-1]["error"]
    assert any("(failed permanently): PermanentFailure" in r.getMessage() for r in caplog.records)


async def test_an_attempt_whose_worker_died_is_in_the_history(make_app, db_kind, clock):
    """Found by the scale-out proof: a job taken over after its worker was killed showed
    ``attempts: 2`` and no word about the first attempt."""
    plugin = TestPlugin()
    app = await make_app(db=db_kind, extra_plugins=[("testhooks", plugin)], job_lease_seconds=60)
    body, headers = delivery({"id": "d1", "type": "thing.x"})
    assert (await app.test_client().post(PATH, data=body, headers=headers)).status_code == 200
    gw = app.extensions["gateway"]
    settings = queue.QueueSettings.from_config(gw.config)
    died = await queue.claim("killed-worker", clock.now(), settings, gw.db.url)
    assert died is not None
    lost_at = clock.advance(61)
    plugin.block = asyncio.Event()  # the next worker is running it: the API tells why
    running = asyncio.ensure_future(run_pending_jobs(app))
    await asyncio.wait_for(plugin.started.wait(), 10)
    job = await Job.get(id=died.id)
    assert (job.status, job.attempts, job.last_error) == ("running", 2, queue.LEASE_LOST)
    plugin.block.set()
    assert await running == 1
    job = await Job.get(id=died.id)
    assert (job.status, job.attempts, job.last_error) == ("succeeded", 2, None)
    assert job.history == [
        {"attempt": 1, "at": lost_at.isoformat(), "error": queue.LEASE_LOST, "outcome": "retry"}
    ]


async def test_a_job_whose_workers_keep_dying_has_one_entry_per_attempt(make_app, db_kind, clock):
    plugin = TestPlugin()
    app = await make_app(db=db_kind, extra_plugins=[("testhooks", plugin)], job_lease_seconds=60)
    body, headers = delivery({"id": "d2", "type": "thing.flaky"})
    assert (await app.test_client().post(PATH, data=body, headers=headers)).status_code == 200
    await Job.filter(handler="test.record").delete()
    gw = app.extensions["gateway"]
    settings = queue.QueueSettings.from_config(gw.config)
    for _ in range(3):  # max_attempts of test.flaky
        assert await queue.claim("dying", clock.now(), settings, gw.db.url) is not None
        clock.advance(61)
    assert await run_pending_jobs(app) == 1
    job = await Job.get(handler="test.flaky")
    assert job.status == "dead" and job.last_error == queue.LEASE_EXPIRED
    assert [(h["attempt"], h["outcome"], h["error"]) for h in job.history] == [
        (1, "retry", queue.LEASE_LOST),
        (2, "retry", queue.LEASE_LOST),
        (3, "dead", queue.LEASE_EXPIRED),
    ]
    assert plugin.ran == []


def test_history_is_bounded():
    history: list[dict[str, Any]] = []
    for n in range(queue.HISTORY_MAX + 5):
        history = queue.with_entry(history, attempt=n)
    assert len(history) == queue.HISTORY_MAX
    assert history[0]["attempt"] == 5 and history[-1]["attempt"] == queue.HISTORY_MAX + 4


def test_gateway_jobs_show_lists_each_attempt(tmp_path: Path, capsys: Any) -> None:
    from tests.test_jobs_cli import seed

    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        f'database_url = "sqlite://{tmp_path / "gw.db"}"\nauto_migrate = true\n'
    )
    dead_id = seed(config)
    assert main(["--config", str(config), "jobs", "--retry", str(dead_id)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "jobs", "--show", str(dead_id)]) == 0
    out = capsys.readouterr().out
    assert f"job {dead_id}: h.bad" in out and "status pending, attempt 0/3" in out
    assert "requeued" in out
    assert main(["--config", str(config), "jobs", "--show", "999999"]) == 2
    assert capsys.readouterr().err.strip() == "gateway: job 999999 does not exist"
