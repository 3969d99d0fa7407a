"""``gateway jobs`` (queue depth, dead jobs, retry) and ``gateway worker`` (the job worker
as its own process, for deployments that run ``gateway serve --no-worker``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Iterable
from typing import Any

from quart import Quart

from gateway.config import GatewayConfig
from gateway.errors import StartupError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "jobs", help="show queue depth and dead jobs; one job's attempts; retry a dead job"
    )
    p.add_argument("--dead", type=int, default=20, metavar="N", help="list up to N dead jobs")
    p.add_argument("--show", type=int, metavar="JOB_ID", help="one job and its attempt history")
    p.add_argument("--retry", type=int, metavar="JOB_ID", help="retry this dead job")
    p.set_defaults(handler=cmd_jobs)
    p = sub.add_parser("worker", help="run the job worker (no HTTP) until SIGTERM/SIGINT")
    p.add_argument("--concurrency", type=int, help="jobs run at once (default from config)")
    p.set_defaults(handler=cmd_worker)


# -- gateway worker ---------------------------------------------------------------------


async def run_worker_process(app: Quart, *, stop: asyncio.Event | None = None) -> None:
    """Start the app (database, HTTP session, plugins' startup hooks, the worker), run
    until ``stop`` is set or SIGTERM/SIGINT arrives, then shut down: running jobs finish
    within the grace period or are released for another worker."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app.extensions["gateway"].config.gateway.run_worker = True
    await app.startup()
    try:
        await stop.wait()
    finally:
        await app.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def cmd_worker(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import create_app

    if args.concurrency:
        config.gateway.job_concurrency = args.concurrency
    asyncio.run(run_worker_process(create_app(config)))
    return 0


# -- gateway jobs -----------------------------------------------------------------------


def _table(rows: Iterable[Iterable[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


async def jobs_report(gw: Any, dead_limit: int) -> str:
    from tortoise.functions import Count

    from gateway.jobs import models as m

    now = gw.clock.now()
    counts = {
        row["status"]: row["n"]
        for row in await m.Job.all()
        .group_by("status")
        .annotate(n=Count("id"))
        .values("status", "n")
    }
    due = await m.Job.filter(status=m.PENDING, run_at__lte=now).count()
    lines = [
        _table(
            [("status", "jobs")] + [(s, counts.get(s, 0)) for s in m.STATUSES] + [("due now", due)]
        )
    ]
    dead = await m.Job.filter(status=m.DEAD).order_by("-id").limit(dead_limit)
    if dead:
        lines.append("")
        lines.append(f"dead jobs (newest {len(dead)}):")
        rows: list[tuple[Any, ...]] = [("id", "event", "team", "handler", "attempts", "error")]
        for j in dead:
            rows.append(
                (
                    j.id,
                    j.event_id,
                    j.team_id or "-",
                    j.handler,
                    j.attempts,
                    _first_line(j.last_error),
                )
            )
        lines.append(_table(rows))
    return "\n".join(lines)


def _first_line(text: str | None, width: int = 80) -> str:
    return text.splitlines()[0][:width] if text else ""


async def job_report(job_id: int) -> str:
    """One job and its history: every failed attempt's time and error, and each retry.

    :raises StartupError: no such job (one line, exit 2).
    """
    from gateway.jobs import models as m

    job = await m.Job.get_or_none(id=job_id)
    if job is None:
        raise StartupError(f"job {job_id} does not exist")
    lines = [
        f"job {job.id}: {job.handler} for event {job.event_id}, team {job.team_id or '-'}",
        f"status {job.status}, attempt {job.attempts}/{job.max_attempts}, "
        f"next run {job.run_at.isoformat() if job.status == m.PENDING else '-'}",
    ]
    history = job.history or []
    if history:
        rows = [("attempt", "at", "outcome", "error")]
        for entry in history:
            rows.append(
                (
                    entry.get("attempt", "-"),
                    entry.get("at", ""),
                    entry.get("outcome", ""),
                    _first_line(entry.get("error")),
                )
            )
        lines += ["", _table(rows)]
    return "\n".join(lines)


async def _jobs(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import opened

    async with opened(config) as gw:
        if await gw.db.pending_migrations():
            raise StartupError("database: migrations pending; run `gateway migrate`")
        if args.retry is not None:
            from gateway.jobs.queue import retry_dead

            if not await retry_dead(args.retry, gw.clock.now()):
                raise StartupError(f"job {args.retry} is not a dead job")
            print(f"job {args.retry} queued again (its history is kept: gateway jobs --show)")
            return 0
        if args.show is not None:
            print(await job_report(args.show))
            return 0
        print(await jobs_report(gw, args.dead))
    return 0


def cmd_jobs(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_jobs(args, config))
