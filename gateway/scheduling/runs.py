"""Run rows: claiming a window, the lease and its heartbeat, finishing, and expiry.

A claim inserts ``(task, window_start, attempt)`` with "do nothing on conflict" and then
reads the row back: it is ours if it carries our one-off owner token. That is one
statement that both back ends serialise on the unique index, so concurrent pingers,
tickers in several processes and ``gateway cron run`` agree on one winner without
locks held across the run. Every later write is a compare-and-set on ``(id, owner,
status=running)``: a process whose lease ran out cannot overwrite what came after.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.scheduling.models import FAILED, RUNNING, SETTLED, TaskRun

DETAIL_MAX_CHARS = 2000
LEASE_EXPIRED = "lease expired: the process running it stopped or lost the database"
# A claim that keeps losing races (another claimer inserts each attempt first) gives up
# after this many rounds and reports what the winner holds.
_MAX_ROUNDS = 8


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim`: ``run`` is ours when ``claimed``, else the run that
    already holds or settled the window."""

    run: TaskRun
    claimed: bool


async def latest_run(task: str, window_start: datetime) -> TaskRun | None:
    return await TaskRun.filter(task=task, window_start=window_start).order_by("-attempt").first()


async def claim(
    task: str,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    *,
    owner: str,
    trigger: str,
    forced: bool,
    lease_seconds: float,
    max_attempts: int,
) -> Claim:
    """Take the window ``window_start`` of ``task`` for a new run, if it may run.

    Not forced: a window runs once. It may run again only after a failure (an error,
    or a lease that expired because its process died), up to ``max_attempts`` runs.
    Forced: a new run unless one is running right now.
    """
    for _ in range(_MAX_ROUNDS):
        latest = await latest_run(task, window_start)
        if latest is not None:
            if latest.status == RUNNING:
                if latest.lease_until is not None and latest.lease_until >= now:
                    return Claim(latest, False)
                if not await expire(latest, now):
                    continue  # it changed under us (finished, or another expired it)
            if not forced and (latest.status in SETTLED or latest.attempt >= max_attempts):
                return Claim(latest, False)
        attempt = latest.attempt + 1 if latest is not None else 1
        token = f"{owner}/{uuid.uuid4().hex[:12]}"
        row = TaskRun(
            task=task,
            window_start=window_start,
            window_end=window_end,
            attempt=attempt,
            status=RUNNING,
            forced=forced,
            trigger=trigger,
            owner=token,
            started_at=now,
            heartbeat_at=now,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        await TaskRun.bulk_create([row], ignore_conflicts=True)
        mine = await TaskRun.get_or_none(task=task, window_start=window_start, attempt=attempt)
        if mine is not None and mine.owner == token:
            return Claim(mine, True)
    latest = await latest_run(task, window_start)
    if latest is None:  # pragma: no cover - rows are never deleted while claiming
        raise RuntimeError(f"scheduled task {task}: could not claim its window")
    return Claim(latest, False)


def _mine(run: TaskRun) -> Any:
    return TaskRun.filter(id=run.id, owner=run.owner, status=RUNNING)


async def expire(run: TaskRun, now: datetime) -> bool:
    """Mark a running run whose lease ended as failed. ``False`` when the row had
    already moved on (the run finished, or someone else expired it)."""
    done = (
        await _mine(run)
        .filter(lease_until__lt=now)
        .update(status=FAILED, detail=LEASE_EXPIRED, finished_at=now, lease_until=None)
    )
    if done:
        run.status, run.detail, run.finished_at, run.lease_until = FAILED, LEASE_EXPIRED, now, None
    return bool(done)


async def expire_stale(now: datetime) -> int:
    """Fail every run whose lease ended (for the history; claims do it per window)."""
    return await TaskRun.filter(status=RUNNING, lease_until__lt=now).update(
        status=FAILED, detail=LEASE_EXPIRED, finished_at=now, lease_until=None
    )


async def heartbeat(run: TaskRun, now: datetime, lease_seconds: float) -> bool:
    """Extend the lease of a run still in progress. ``False`` once it is not ours."""
    lease = now + timedelta(seconds=lease_seconds)
    return bool(await _mine(run).update(lease_until=lease, heartbeat_at=now))


async def finish(
    run: TaskRun,
    now: datetime,
    status: str,
    *,
    figures: dict[str, Any] | None = None,
    detail: str | None = None,
) -> bool:
    """Record the outcome. ``False`` when the run was no longer ours (its lease had
    expired and the window moved on): the outcome is then only logged."""
    detail = detail[:DETAIL_MAX_CHARS] if detail else None
    done = await _mine(run).update(
        status=status, figures=figures, detail=detail, finished_at=now, lease_until=None
    )
    if done:
        run.status, run.figures, run.finished_at = status, figures, now
        run.detail = detail  # type: ignore[assignment]  # a nullable TextField, typed str
        run.lease_until = None
    return bool(done)
