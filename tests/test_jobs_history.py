"""A job's attempt history: every failed attempt's time and error stays visible in the
jobs API and ``gateway jobs --show``, also after a dead job is retried, and the log line
of a dead job says why it died."""

from __future__ import annotations

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
