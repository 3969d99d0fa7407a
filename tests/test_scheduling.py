"""Cron routes as a scheduler calls them: ``GET``/``POST /api/cron/<name>`` with
``Authorization: Bearer <cron secret>``. One run per schedule window, ``already_ran``,
``force``, retries after a failure, long runs (202), the run history, startup checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.app import create_app
from gateway.config import load_config
from gateway.errors import StartupError
from gateway.scheduling import ScheduledTask
from gateway.scheduling.models import TaskRun
from gateway.scheduling.runner import runner_of
from tests.support.cron_plugin import SECRET, CronPlugin, bearer
from tests.support.identity import make_team, make_user, member_headers, token_for

NIGHTLY = "/api/cron/nightly"


@pytest.fixture
def plugin() -> CronPlugin:
    return CronPlugin()


async def start(make_app, plugin, db="sqlite", **settings):
    return await make_app(
        db=db,
        plugins={"crontest": {}},  # no other plugin's tasks
        extra_plugins=[("crontest", plugin)],
        cron_secret=SECRET,
        **settings,
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BAD_HEADERS = [
    {},
    {"Authorization": "Bearer wrong-secret"},
    {"Authorization": f"Basic {SECRET}"},
    {"Authorization": f"Bearer {SECRET}x"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer sécret"},
]


async def test_missing_or_wrong_bearer_is_401_json_on_get_and_post(make_app, plugin):
    app = await start(make_app, plugin)
    client = app.test_client()
    for method in ("GET", "POST"):
        for headers in BAD_HEADERS:
            for path in (NIGHTLY, "/api/cron/no-such-task"):  # names are not disclosed
                resp = await client.open(path, method=method, headers=headers)
                assert resp.status_code == 401, (method, headers, path)
                assert await resp.get_json() == {
                    "error": "Missing or invalid cron secret",
                    "code": "UNAUTHORIZED",
                }
    assert plugin.runs == [] and await TaskRun.all().count() == 0
    # The same request with the secret runs the task.
    assert (await client.post(NIGHTLY, headers=bearer())).status_code == 200


async def test_unknown_task_with_the_secret_is_404(make_app, plugin):
    app = await start(make_app, plugin)
    resp = await app.test_client().get("/api/cron/no-such-task", headers=bearer())
    assert resp.status_code == 404
    assert (await resp.get_json())["code"] == "NOT_FOUND"


async def test_a_window_runs_once_then_already_ran_and_force_runs_it_again(make_app, plugin, clock):
    app = await start(make_app, plugin)
    client = app.test_client()
    resp = await client.get(NIGHTLY, headers=bearer())  # 2026-01-01 12:00: window 03:00
    assert resp.status_code == 200
    body = await resp.get_json()
    assert body["status"] == "succeeded" and body["attempt"] == 1
    assert body["window_start"] == "2026-01-01T03:00:00+00:00"
    assert body["window_end"] == "2026-01-02T03:00:00+00:00"
    assert body["figures"] == {"processed": 1, "bytes": 1024}
    ctx = plugin.runs[0]
    assert (ctx.run_id, ctx.trigger, ctx.forced, ctx.attempt) == (body["run_id"], "http", False, 1)
    assert ctx.previous_window_start == at("2025-12-31 03:00")
    assert ctx.window_key == "nightly@2026-01-01T03:00:00+00:00"
    first = body["run_id"]

    for method in ("GET", "POST"):
        resp = await client.open(NIGHTLY, method=method, headers=bearer())
        assert resp.status_code == 200
        assert await resp.get_json() == {
            "status": "already_ran",
            "run_id": first,
            "task": "nightly",
            "window_start": "2026-01-01T03:00:00+00:00",
            "outcome": "succeeded",
        }
    clock.set(at("2026-01-02 02:58:00"))  # still the same window
    assert (await (await client.get(NIGHTLY, headers=bearer())).get_json())["status"] == (
        "already_ran"
    )
    clock.set(at("2026-01-02 03:00"))  # the next fire time opens the next window
    body = await (await client.post(NIGHTLY, headers=bearer())).get_json()
    assert body["status"] == "succeeded" and body["window_start"] == "2026-01-02T03:00:00+00:00"

    resp = await client.get(NIGHTLY + "?force=true", headers=bearer())
    body = await resp.get_json()
    assert resp.status_code == 200 and body["status"] == "succeeded"
    assert (body["attempt"], body["forced"]) == (2, True)
    assert plugin.runs[-1].forced is True
    rows = await TaskRun.all().order_by("id").values_list("window_start", "attempt", "status")
    assert rows == [
        (at("2026-01-01 03:00"), 1, "succeeded"),
        (at("2026-01-02 03:00"), 1, "succeeded"),
        (at("2026-01-02 03:00"), 2, "succeeded"),
    ]
    resp = await client.get(NIGHTLY + "?force=perhaps", headers=bearer())
    assert resp.status_code == 400 and (await resp.get_json())["code"] == "VALIDATION_ERROR"
    assert len(plugin.runs) == 3


async def test_a_ping_slightly_early_counts_for_the_coming_window(make_app, plugin, clock):
    # Pinger clocks and schedulers are not exact: a ping a few seconds before 03:00
    # must run today's window, not meet yesterday's as already ran.
    clock.set(at("2026-01-01 02:59:30"))
    app = await start(make_app, plugin, cron_early_seconds=60)
    client = app.test_client()
    body = await (await client.get(NIGHTLY, headers=bearer())).get_json()
    assert (body["status"], body["window_start"]) == ("succeeded", "2026-01-01T03:00:00+00:00")
    clock.set(at("2026-01-02 02:58:59"))  # more than a minute early: still the last window
    body = await (await client.get(NIGHTLY, headers=bearer())).get_json()
    assert (body["status"], body["window_start"]) == ("already_ran", "2026-01-01T03:00:00+00:00")


async def test_a_failed_run_is_500_and_the_next_ping_retries_it_up_to_max_attempts(
    make_app, plugin
):
    app = await start(make_app, plugin, cron_max_attempts=2)
    client = app.test_client()
    plugin.fail = True
    resp = await client.get(NIGHTLY, headers=bearer())
    assert resp.status_code == 500
    body = await resp.get_json()
    assert body["code"] == "INTERNAL_ERROR" and body["status"] == "failed"
    run = await TaskRun.get(id=body["run_id"])
    assert run.status == "failed" and run.detail.startswith("RuntimeError: nightly broke")
    assert SECRET not in run.detail  # known secrets are scrubbed from stored errors
    assert (await client.get(NIGHTLY, headers=bearer())).status_code == 500  # attempt 2
    resp = await client.get(NIGHTLY, headers=bearer())  # attempts used up for this window
    assert (await resp.get_json())["status"] == "already_ran"
    assert (await resp.get_json())["outcome"] == "failed"
    plugin.fail = False
    body = await (await client.post(NIGHTLY + "?force=1", headers=bearer())).get_json()
    assert (body["status"], body["attempt"]) == ("succeeded", 3)
    assert len(plugin.runs) == 3


async def test_a_skipped_run_records_its_reason_and_is_not_retried(make_app, plugin):
    app = await start(make_app, plugin)
    client = app.test_client()
    plugin.skip = "mail not configured"
    body = await (await client.get(NIGHTLY, headers=bearer())).get_json()
    assert body["status"] == "skipped" and body["detail"] == "mail not configured"
    assert body["figures"] == {"looked_at": 2}
    assert (await (await client.get(NIGHTLY, headers=bearer())).get_json())["outcome"] == (
        "skipped"
    )
    assert len(plugin.runs) == 1


async def test_ten_concurrent_pings_cause_one_run(make_app, plugin, db_kind):
    app = await start(make_app, plugin, db=db_kind, cron_wait_seconds=0)
    plugin.gate = asyncio.Event()  # the run lasts until every ping has been answered
    client = app.test_client()
    responses = await asyncio.gather(*(client.get(NIGHTLY, headers=bearer()) for _ in range(10)))
    bodies = [await r.get_json() for r in responses]
    started = [b for r, b in zip(responses, bodies, strict=True) if r.status_code == 202]
    assert len(started) == 1 and started[0]["status"] == "running"
    others = [b for b in bodies if b["status"] == "already_ran"]
    assert len(others) == 9
    assert {b["run_id"] for b in others} == {started[0]["run_id"]}
    assert {b["outcome"] for b in others} == {"running"}
    plugin.gate.set()
    await runner_of(app).join()
    assert len(plugin.runs) == 1
    assert await TaskRun.filter(task="nightly").count() == 1
    assert (await TaskRun.get(id=started[0]["run_id"])).status == "succeeded"


async def test_a_long_run_answers_202_and_finishes_after_the_pinger_left(make_app, plugin):
    app = await start(make_app, plugin, cron_wait_seconds=0)
    plugin.gate = asyncio.Event()
    client = app.test_client()
    resp = await client.get(NIGHTLY, headers=bearer())
    assert resp.status_code == 202
    body = await resp.get_json()
    assert body == {
        "status": "running",
        "run_id": body["run_id"],
        "task": "nightly",
        "window_start": "2026-01-01T03:00:00+00:00",
    }
    # A forced run cannot start while this one runs.
    resp = await client.get(NIGHTLY + "?force=true", headers=bearer())
    assert resp.status_code == 409
    assert await resp.get_json() == {
        "error": "A run of this task is in progress",
        "code": "CONFLICT",
        "run_id": body["run_id"],
    }
    plugin.gate.set()
    await runner_of(app).join()
    run = await TaskRun.get(id=body["run_id"])
    assert run.status == "succeeded" and run.figures == {"processed": 1, "bytes": 1024}


async def test_a_pinger_that_hangs_up_while_waiting_does_not_cancel_the_run(make_app, plugin):
    app = await start(make_app, plugin, cron_wait_seconds=30)
    plugin.gate = asyncio.Event()
    ping = asyncio.ensure_future(app.test_client().get(NIGHTLY, headers=bearer()))
    await plugin.started.wait()
    ping.cancel()  # the scheduler's HTTP client gave up
    with pytest.raises(asyncio.CancelledError):
        await ping
    assert runner_of(app).running_ids  # still running
    plugin.gate.set()
    await runner_of(app).join()
    assert [r.status for r in await TaskRun.all()] == ["succeeded"]


async def test_shutdown_interrupts_a_run_as_failed_and_the_next_ping_retries(
    make_app, plugin, tmp_path
):
    app = await start(make_app, plugin, cron_wait_seconds=0, cron_shutdown_grace_seconds=0)
    plugin.gate = asyncio.Event()
    resp = await app.test_client().get(NIGHTLY, headers=bearer())
    assert resp.status_code == 202
    await plugin.started.wait()
    await runner_of(app).stop()  # what the app's shutdown does, grace period 0
    run = await TaskRun.get(id=(await resp.get_json())["run_id"])
    assert run.status == "failed" and run.detail.startswith("interrupted")
    plugin.gate.set()
    resp = await app.test_client().get(NIGHTLY, headers=bearer())
    assert resp.status_code == 202
    await runner_of(app).join()
    retry = await TaskRun.get(id=(await resp.get_json())["run_id"])
    assert (retry.status, retry.attempt) == ("succeeded", 2)


async def test_run_history_for_super_admins_with_filters_and_cursor(make_app, plugin, clock):
    app = await start(make_app, plugin)
    client = app.test_client()
    for _day in range(3):
        await client.get(NIGHTLY, headers=bearer())
        clock.advance(days=1)
    plugin.fail = True
    await client.get(NIGHTLY, headers=bearer())
    admin = await token_for(await make_user("root@example.com", super_admin=True))
    team_admin = await member_headers(await make_team("Acme"), "a@example.com", "admin")

    assert (await client.get("/api/cron/runs")).status_code == 401
    assert (await client.get("/api/cron/runs", headers=bearer())).status_code == 401
    assert (await client.get("/api/cron/runs", headers=team_admin)).status_code == 403
    body = await (await client.get("/api/cron/runs?limit=2", headers=admin)).get_json()
    assert [r["status"] for r in body["items"]] == ["failed", "succeeded"]
    assert body["items"][0]["detail"].startswith("RuntimeError")
    more = await client.get(f"/api/cron/runs?limit=2&cursor={body['next_cursor']}", headers=admin)
    more = await more.get_json()
    assert len(more["items"]) == 2 and more["next_cursor"] is None
    failed = await (await client.get("/api/cron/runs?status=failed", headers=admin)).get_json()
    assert len(failed["items"]) == 1
    assert (await client.get("/api/cron/runs?task=other", headers=admin)).status_code == 200
    resp = await client.get("/api/cron/runs?status=done", headers=admin)
    assert resp.status_code == 400
    one = await client.get(f"/api/cron/runs/{failed['items'][0]['id']}", headers=admin)
    assert (await one.get_json())["window_start"] == "2026-01-04T03:00:00+00:00"
    assert (await client.get("/api/cron/runs/999", headers=admin)).status_code == 404


class BadTasks:
    def __init__(self, *tasks):
        self.tasks = list(tasks)

    from gateway import hookimpl

    @hookimpl
    def register_scheduled_tasks(self, config):
        return self.tasks


async def _noop(ctx):
    return None


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            ScheduledTask("bad", "61 * * * *", _noop),
            "plugin 'badcron': scheduled task 'bad': schedule '61 * * * *': "
            "not a valid cron expression",
        ),
        (
            ScheduledTask("bad", "0 3 * *", _noop),
            "plugin 'badcron': scheduled task 'bad': schedule '0 3 * *': expected 5 fields",
        ),
        (ScheduledTask("Bad Name", "0 3 * * *", _noop), "scheduled task name 'Bad Name'"),
        (ScheduledTask("runs", "0 3 * * *", _noop), "scheduled task name 'runs'"),
        ({"name": "dict"}, "must return a list of gateway.scheduling.ScheduledTask"),
    ],
)
def test_a_bad_task_stops_startup_with_one_line_naming_the_plugin(tmp_path, item, message):
    if isinstance(item, dict):
        from types import SimpleNamespace

        item = SimpleNamespace(name="dict")
        message += ", not a list containing SimpleNamespace"
    config = load_config(data={"gateway": {"data_dir": str(tmp_path)}}, environ={})
    with pytest.raises(StartupError) as err:
        create_app(config, extra_plugins=[("badcron", BadTasks(item))])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("plugin 'badcron'")


async def test_a_run_started_outside_any_app_context_gets_one(make_app, plugin):
    """`gateway cron run` and a separate `gateway scheduler` start runs with no request
    or app context; handlers still get one, as jobs do."""
    import contextvars

    app = await start(make_app, plugin)
    runner = runner_of(app)
    bare = contextvars.Context()  # nothing of Quart's context in here
    task = asyncio.get_running_loop().create_task(
        runner.trigger("nightly", trigger="cli"), context=bare
    )
    await task
    await runner.join()
    assert plugin.in_app_context == [True]
