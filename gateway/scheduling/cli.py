"""``gateway cron list|run`` and ``gateway scheduler`` (the ticker as its own process)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from quart import Quart

from gateway.config import GatewayConfig


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cron", help="list scheduled tasks, or run one now")
    cron = p.add_subparsers(dest="cron_command", required=True)
    q = cron.add_parser("list", help="tasks: schedule, next run, last outcome")
    q.set_defaults(handler=cmd_cron_list)
    q = cron.add_parser("run", help="run a task's current window now (once per window)")
    q.add_argument("name")
    q.add_argument("--force", action="store_true", help="run even if the window already ran")
    q.set_defaults(handler=cmd_cron_run)
    p = sub.add_parser("scheduler", help="run the cron ticker (no HTTP) until SIGTERM/SIGINT")
    p.set_defaults(handler=cmd_scheduler)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


# -- gateway cron list --------------------------------------------------------------


async def cron_table(gw: Any) -> str:
    """Every task: plugin, schedule, next fire time, and its latest run."""
    from gateway.scheduling.models import TaskRun
    from gateway.scheduling.task import validate_tasks

    registered = gw.registries.get("register_scheduled_tasks", {})
    tasks = validate_tasks(registered)
    if not tasks:
        return "no scheduled tasks registered"
    now = gw.clock.now()
    rows = [("task", "plugin", "schedule", "next run (UTC)", "last run (UTC)", "outcome")]
    for name, task in sorted(tasks.items()):
        last = await TaskRun.filter(task=name).order_by("-id").first()
        rows.append(
            (
                name,
                registered[name][0],
                task.schedule,
                _when(task.cron.next_after(now)),
                _when(last.started_at if last else None),
                f"{last.status} (run {last.id})" if last else "never ran",
            )
        )
    return _table(rows)


async def _cron_list(config: GatewayConfig) -> int:
    from gateway.app import opened

    async with opened(config) as gw:
        if await gw.db.pending_migrations():
            print("gateway: migrations pending; run `gateway migrate`", file=sys.stderr)
            return 1
        print(await cron_table(gw))
    return 0


def cmd_cron_list(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_cron_list(config))


# -- gateway cron run ---------------------------------------------------------------


def describe(run: Any) -> str:
    figures = json.dumps(run.figures, sort_keys=True) if run.figures else ""
    parts = [f"{run.task}: run {run.id} (window {run.window_start.isoformat()}, "]
    parts.append(f"attempt {run.attempt}): {run.status}")
    return (
        "".join(parts)
        + (f" {figures}" if figures else "")
        + (f" - {run.detail}" if run.detail else "")
    )


async def run_task_now(app: Quart, name: str, *, force: bool = False) -> int:
    """Start ``app`` without its worker or ticker, run ``name``'s current window through
    the same claim as the pings, wait for it, and print the outcome. Exit status: 0 for
    succeeded, skipped or already ran; 1 for a failed run or a run in progress."""
    from gateway.scheduling.models import FAILED, RUNNING
    from gateway.scheduling.runner import runner_of

    settings = app.extensions["gateway"].config.gateway
    settings.run_worker = settings.run_scheduler = False
    runner = runner_of(app)
    if name not in runner.tasks:
        known = ", ".join(sorted(runner.tasks)) or "none"
        print(f"gateway: no scheduled task named {name!r} (tasks: {known})", file=sys.stderr)
        return 2
    await app.startup()
    try:
        claim = await runner.trigger(name, trigger="cli", forced=force)
        if not claim.claimed:
            state = "is running" if claim.run.status == RUNNING else "already ran"
            window = claim.run.window_start.isoformat()
            print(f"{name}: window {window} {state}: {describe(claim.run)}")
            return 1 if claim.run.status == RUNNING and force else 0
        run = await runner.wait(claim.run.id)
        if run is None:  # pragma: no cover - waited without a timeout
            return 1
        print(describe(run))
        return 1 if run.status == FAILED else 0
    finally:
        await app.shutdown()


def cmd_cron_run(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import create_app

    return asyncio.run(run_task_now(create_app(config), args.name, force=args.force))


# -- gateway scheduler --------------------------------------------------------------


async def run_scheduler_process(app: Quart, *, stop: asyncio.Event | None = None) -> None:
    """Start the app with the ticker on (and no job worker), run until ``stop`` is set
    or SIGTERM/SIGINT arrives, then shut down: running tasks get the grace period."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = app.extensions["gateway"].config.gateway
    settings.run_scheduler, settings.run_worker = True, False
    await app.startup()
    try:
        await stop.wait()
    finally:
        await app.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def cmd_scheduler(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import create_app

    asyncio.run(run_scheduler_process(create_app(config)))
    return 0
