"""A plugin that registers scheduled tasks for the scheduler's tests.

``nightly`` (``0 3 * * *``) records each context it ran with, can be held on a gate,
made to fail or to skip; ``every-second`` (``* * * * * *``) appends one line per run to
a log file shared by processes (``ran <task> <window> <pid> <trigger>``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from quart import current_app, has_app_context

from gateway import hookimpl
from gateway.scheduling import ScheduledTask, TaskContext, TaskSkipped
from tests.support.lines import append_line

SECRET = "test-cron-secret-0123456789abcdef"


def bearer(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class CronPlugin:
    """Register with ``make_app(extra_plugins=[("crontest", plugin)])``."""

    def __init__(
        self,
        log: str | None = None,
        *,
        block_forever: bool = False,
        tasks: tuple[str, ...] = ("nightly", "every-second"),
    ) -> None:
        self.log = log
        self.tasks = tasks
        self.block_forever = block_forever
        self.runs: list[TaskContext] = []
        self.in_app_context: list[bool] = []
        self.gate: asyncio.Event | None = None  # the handler waits for it when set
        self.started = asyncio.Event()
        self.fail = False
        self.skip: str | None = None

    async def nightly(self, ctx: TaskContext) -> dict[str, Any]:
        self.runs.append(ctx)
        # Tasks run in an app context, as jobs do (calls that read the current app work).
        self.in_app_context.append(has_app_context() and current_app == ctx.app)
        self.started.set()
        if self.log:
            append_line(self.log, f"start {ctx.task.name} {ctx.run_id} {os.getpid()}")
        if self.block_forever:
            await asyncio.Event().wait()  # until the process is killed
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError(f"nightly broke; secret {SECRET} must not be stored")
        if self.skip:
            raise TaskSkipped(self.skip, {"looked_at": 2})
        return {"processed": len(self.runs), "bytes": 1024}

    async def every_second(self, ctx: TaskContext) -> None:
        if self.log:
            window = ctx.window_start.isoformat()
            append_line(self.log, f"ran {ctx.task.name} {window} {os.getpid()} {ctx.trigger}")

    @hookimpl
    def register_scheduled_tasks(self, config: Any) -> list[ScheduledTask]:
        tasks = [
            ScheduledTask("nightly", "0 3 * * *", self.nightly, "a nightly test task"),
            ScheduledTask("every-second", "* * * * * *", self.every_second, "every second"),
        ]
        return [t for t in tasks if t.name in self.tasks]
