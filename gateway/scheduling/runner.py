"""Running scheduled tasks in this process: claim the window, run the handler in the
background with a heartbeat, record the outcome.

A run belongs to the process, not to whoever triggered it: the HTTP ping, the ticker
and ``gateway cron run`` only start it, so a pinger that hangs up does not cancel it.
At shutdown runs get ``cron_shutdown_grace_seconds`` to finish; the rest are cancelled
and recorded as failed, so the next ping or tick may run the window again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from quart import Quart

from gateway.logs import redactor
from gateway.scheduling import runs
from gateway.scheduling.models import FAILED, SKIPPED, SUCCEEDED, TaskRun
from gateway.scheduling.task import ScheduledTask, TaskContext, TaskSkipped, validate_tasks

log = logging.getLogger("gateway.scheduling")

RUNNER_KEY = "gateway_scheduling"
INTERRUPTED = "interrupted: the gateway shut down before the run finished"


def runner_of(app: Quart) -> Runner:
    """The app's runner (created on first use)."""
    runner = app.extensions.get(RUNNER_KEY)
    if runner is None:
        runner = app.extensions[RUNNER_KEY] = Runner(app)
    return runner


def _figures(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TypeError(f"handler returned {type(result).__name__}, not a mapping of figures")
    figures = {str(k): v for k, v in result.items()}
    json.dumps(figures)  # TypeError now rather than a half-written row later
    return figures


def _error_text(exc: BaseException) -> str:
    # Exception text may carry a URL with a token in it: scrub known secrets.
    return redactor.scrub(f"{type(exc).__name__}: {exc}")


class Runner:
    """Claims and runs this app's scheduled tasks."""

    def __init__(self, app: Quart) -> None:
        gw = app.extensions["gateway"]
        self.app, self.gw = app, gw
        self.tasks: dict[str, ScheduledTask] = validate_tasks(
            gw.registries.get("register_scheduled_tasks", {})
        )
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[int, asyncio.Task[TaskRun]] = {}

    @property
    def settings(self) -> Any:
        return self.gw.config.gateway

    # -- starting a run ------------------------------------------------------------

    async def trigger(
        self, name: str, *, trigger: str, forced: bool = False, early_seconds: float = 0
    ) -> runs.Claim:
        """Claim the current window of task ``name`` and, if claimed, start the run in
        the background (:meth:`wait` for it). Otherwise the claim says which run holds
        or settled the window.

        :param early_seconds: see :meth:`CronSchedule.window_at` (HTTP pings).
        :raises KeyError: no task has this name.
        """
        task = self.tasks[name]
        now = self.gw.clock.now()
        window = task.cron.window_at(now, early_seconds)
        claim = await runs.claim(
            name,
            window,
            task.cron.next_after(window),
            now,
            owner=self.owner,
            trigger=trigger,
            forced=forced,
            lease_seconds=self.settings.cron_lease_seconds,
            max_attempts=self.settings.cron_max_attempts,
        )
        if claim.claimed:
            log.info(
                "scheduled task %s: run %s started (window %s, attempt %s, %s%s)",
                name,
                claim.run.id,
                window.isoformat(),
                claim.run.attempt,
                trigger,
                ", forced" if forced else "",
            )
            running = asyncio.ensure_future(self._execute(task, claim.run))
            self._running[claim.run.id] = running
            run_id: int = claim.run.id
            running.add_done_callback(lambda _t: self._forget(run_id))
        return claim

    def _forget(self, run_id: int) -> None:
        self._running.pop(run_id, None)

    async def wait(self, run_id: int, seconds: float | None = None) -> TaskRun | None:
        """The finished run, or ``None`` if it is still running after ``seconds``
        (real time; ``None`` waits as long as it takes). Waiting never cancels it."""
        running = self._running.get(run_id)
        if running is None:
            return await TaskRun.get_or_none(id=run_id)
        if seconds is not None and seconds <= 0:
            return None
        # asyncio.wait, not wait_for: a timeout must leave the run going.
        done, _pending = await asyncio.wait({running}, timeout=seconds)
        if not done:
            return None
        return await TaskRun.get_or_none(id=run_id)

    async def join(self) -> None:
        """Wait for every run of this process to finish (tests, ``gateway cron run``)."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    @property
    def running_ids(self) -> list[int]:
        return sorted(self._running)

    # -- one run -------------------------------------------------------------------

    async def _execute(self, task: ScheduledTask, run: TaskRun) -> TaskRun:
        ctx = TaskContext(
            task=task,
            run_id=run.id,
            attempt=run.attempt,
            window_start=run.window_start,
            window_end=run.window_end,
            previous_window_start=task.cron.previous_before(run.window_start),
            forced=run.forced,
            trigger=run.trigger,
            app=self.app,
            config=self.gw.config,
            clock=self.gw.clock,
            http=self.gw.http,
        )
        beat = asyncio.ensure_future(self._heartbeat(run))
        figures: dict[str, Any] | None = None
        detail: str | None = None
        try:
            # An app context, as jobs get: the documented calls that read the current
            # app (tokens, team settings, emitting events) work in a task too.
            async with self.app.app_context():
                figures = _figures(await task.handler(ctx))
            status = SUCCEEDED
        except TaskSkipped as exc:
            status, figures, detail = SKIPPED, exc.figures, exc.reason
        except asyncio.CancelledError:
            await self._record(run, FAILED, None, INTERRUPTED)
            raise
        except Exception as exc:  # a task's bug must not take the process down
            status, detail = FAILED, _error_text(exc)
            log.warning("scheduled task %s: run %s failed: %s", task.name, run.id, detail)
        finally:
            beat.cancel()
        await self._record(run, status, figures, detail)
        return run

    async def _record(
        self, run: TaskRun, status: str, figures: dict[str, Any] | None, detail: str | None
    ) -> None:
        now = self.gw.clock.now()
        try:
            recorded = await runs.finish(run, now, status, figures=figures, detail=detail)
        except Exception as exc:  # database down: the lease expires, the window is retried
            log.error("scheduled task %s: run %s outcome not recorded (%s)", run.task, run.id, exc)
            return
        if recorded:
            log.info("scheduled task %s: run %s %s %s", run.task, run.id, status, figures or "")
        else:
            log.warning(
                "scheduled task %s: run %s finished (%s) after its lease was lost",
                run.task,
                run.id,
                status,
            )

    async def _heartbeat(self, run: TaskRun) -> None:
        # Real-time pacing; the lease itself is computed on the gateway clock.
        lease = self.settings.cron_lease_seconds
        while True:
            await asyncio.sleep(max(0.05, lease / 3))
            try:
                if not await runs.heartbeat(run, self.gw.clock.now(), lease):
                    return
            except Exception as exc:  # database blip: try again at the next beat
                log.warning("scheduled task %s: heartbeat failed (%s)", run.task, exc)

    # -- shutdown ------------------------------------------------------------------

    async def stop(self) -> None:
        """Give running runs the grace period, then cancel them (recorded as failed)."""
        pending = list(self._running.values())
        if not pending:
            return
        await asyncio.wait(pending, timeout=self.settings.cron_shutdown_grace_seconds)
        for running in pending:
            if not running.done():
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running
