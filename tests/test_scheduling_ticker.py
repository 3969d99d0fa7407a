"""The built-in ticker on a FrozenClock: it sleeps on the clock, so moving the clock
wakes it. Catch-up after downtime runs the latest missed window once; pings and the
ticker share the claim; failed windows are retried up to the limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.scheduling.models import TaskRun
from gateway.scheduling.runner import runner_of
from gateway.scheduling.ticker import TICKER_KEY
from tests.support.cron_plugin import SECRET, CronPlugin, bearer


@pytest.fixture
def plugin() -> CronPlugin:
    return CronPlugin(tasks=("nightly",))


async def start(make_app, plugin, **settings):
    app = await make_app(
        plugins={"crontest": {}},  # no other plugin's tasks
        extra_plugins=[("crontest", plugin)],
        cron_secret=SECRET,
        run_scheduler=True,
        **settings,
    )
    return app, app.extensions[TICKER_KEY]


async def settle(app, ticker, passes: int) -> None:
    """Wait until the ticker has made ``passes`` passes and the runs it started ended.
    (The timeout only turns a ticker that never wakes into a failure, not a hang.)"""
    await asyncio.wait_for(ticker.wait_passes(passes), 10)
    await asyncio.wait_for(runner_of(app).join(), 10)


async def windows() -> list[tuple[str, int, str, str]]:
    rows = await TaskRun.all().order_by("id")
    return [(r.window_start.strftime("%m-%d %H:%M"), r.attempt, r.status, r.trigger) for r in rows]


async def test_the_ticker_sleeps_on_the_clock_and_runs_each_window_once(make_app, plugin, clock):
    app, ticker = await start(make_app, plugin)
    await settle(app, ticker, 1)  # startup: today's 03:00 window had not run
    assert await windows() == [("01-01 03:00", 1, "succeeded", "ticker")]
    passes = ticker.passes
    clock.set(datetime(2026, 1, 2, 2, 59, tzinfo=UTC))  # wakes it: still the same window
    await settle(app, ticker, passes + 1)
    assert len(plugin.runs) == 1
    passes = ticker.passes
    clock.set(datetime(2026, 1, 2, 3, 0, tzinfo=UTC))
    await settle(app, ticker, passes + 1)
    assert await windows() == [
        ("01-01 03:00", 1, "succeeded", "ticker"),
        ("01-02 03:00", 1, "succeeded", "ticker"),
    ]
    # A ping in the window the ticker ran is answered from the same claim.
    body = await (await app.test_client().get("/api/cron/nightly", headers=bearer())).get_json()
    assert body["status"] == "already_ran" and body["outcome"] == "succeeded"
    assert len(plugin.runs) == 2


async def test_after_a_gap_the_ticker_catches_up_once_not_per_missed_window(
    make_app, plugin, clock
):
    app, ticker = await start(make_app, plugin)
    await settle(app, ticker, 1)
    passes = ticker.passes
    clock.advance(days=5)  # the gateway was down over four fire times
    await settle(app, ticker, passes + 1)
    assert await windows() == [
        ("01-01 03:00", 1, "succeeded", "ticker"),
        ("01-06 03:00", 1, "succeeded", "ticker"),
    ]
    assert plugin.runs[-1].previous_window_start == datetime(2026, 1, 5, 3, tzinfo=UTC)


async def test_a_window_pinged_first_is_not_run_again_by_a_ticker(make_app, plugin, clock):
    # The external pinger runs the window through one replica; another replica's ticker
    # starts afterwards (same database, same clock) and finds it done.
    pinged = await make_app(
        plugins={"crontest": {}}, extra_plugins=[("crontest", plugin)], cron_secret=SECRET
    )
    resp = await pinged.test_client().get("/api/cron/nightly", headers=bearer())
    assert (await resp.get_json())["status"] == "succeeded"
    app, ticker = await start(make_app, plugin)
    await settle(app, ticker, 1)
    passes = ticker.passes
    clock.advance(60)  # the poll: looks again, still nothing to do
    await settle(app, ticker, passes + 1)
    assert await windows() == [("01-01 03:00", 1, "succeeded", "http")]
    assert len(plugin.runs) == 1


async def test_the_ticker_retries_a_failed_window_at_its_poll_up_to_the_limit(
    make_app, plugin, clock
):
    plugin.fail = True
    app, ticker = await start(make_app, plugin, cron_max_attempts=3, scheduler_poll_seconds=60)
    await settle(app, ticker, 1)
    for _ in range(4):
        passes = ticker.passes
        clock.advance(60)
        await settle(app, ticker, passes + 1)
    assert await windows() == [("01-01 03:00", n, "failed", "ticker") for n in (1, 2, 3)]
