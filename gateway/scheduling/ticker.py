"""The built-in ticker: fires due tasks through the same claim as the HTTP pings.

Each pass looks at every task's current window (the latest fire time <= now) and claims
it unless this ticker already knows it is settled. So after downtime a task runs once,
for the latest window it missed, not once per missed window; and any number of tickers
(replicas, ``gateway scheduler`` processes) plus an external pinger run each window
once. Between passes it sleeps on the gateway clock until the next fire time, or at
most ``scheduler_poll_seconds`` so a failed run or an expired lease is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from gateway.scheduling import runs
from gateway.scheduling.models import FAILED, SETTLED, TaskRun
from gateway.scheduling.runner import Runner

log = logging.getLogger("gateway.scheduling")

TICKER_KEY = "gateway_scheduling_ticker"


class Ticker:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.clock = runner.gw.clock
        self.poll = runner.settings.scheduler_poll_seconds
        self.passes = 0  # completed passes (tests wait on this)
        self._settled: dict[str, datetime] = {}  # task -> window that needs no more runs
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _is_settled(self, run: TaskRun) -> bool:
        if run.status in SETTLED:
            return True
        return run.status == FAILED and run.attempt >= self.runner.settings.cron_max_attempts

    async def tick(self) -> list[TaskRun]:
        """One pass: claim every task's current window that is not settled. Returns
        the runs this pass started."""
        now = self.clock.now()
        await runs.expire_stale(now)
        started: list[TaskRun] = []
        for name, task in self.runner.tasks.items():
            window = task.cron.window_at(now)
            if self._settled.get(name) == window:
                continue
            claim = await self.runner.trigger(name, trigger="ticker")
            if claim.claimed:
                started.append(claim.run)
            elif self._is_settled(claim.run) and claim.run.window_start == window:
                self._settled[name] = window
            # Running elsewhere: looked at again next pass, in case its lease ends.
        return started

    def next_wake(self, now: datetime) -> datetime:
        poll = now + timedelta(seconds=self.poll)
        fires = [task.cron.next_after(now) for task in self.runner.tasks.values()]
        return min([poll, *fires])

    # -- the loop ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())
        log.info("scheduler ticker started (%d tasks)", len(self.runner.tasks))

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # database blip: the next pass tries again
                log.exception("scheduler ticker: pass failed")
            # The wake-up time is fixed before the pass is announced: a clock moved
            # right after the announcement then still wakes this sleep.
            wake_at = self.next_wake(self.clock.now())
            self.passes += 1
            self._changed.set()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(wake_at))
            stopper = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (sleeper, stopper):
                    waiter.cancel()

    async def wait_passes(self, count: int) -> None:
        """Return once at least ``count`` passes have completed (tests)."""
        while self.passes < count:
            self._changed.clear()
            await self._changed.wait()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
