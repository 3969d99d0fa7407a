"""Queue operations on job rows: enqueue, claim with a lease, finish, fail, release.

Every state change after a claim is a compare-and-set on ``(id, locked_by, attempts)``:
a worker whose lease ran out and was reclaimed by another can no longer touch the row,
so a job is never finished twice nor run twice at the same time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.db import is_postgres
from gateway.events import EventHandler
from gateway.jobs.models import DEAD, PENDING, RUNNING, SUCCEEDED, Job

ERROR_MAX_CHARS = 1000
# Attempts kept in a job's history: enough to see a pattern across a retry or two while
# bounding the row (each entry is at most ~1 KB). Older entries are dropped first.
HISTORY_MAX = 20
LEASE_EXPIRED = "lease expired on the last attempt (worker died or hung)"
# The history entry of an attempt whose worker never reported back (killed, hung, cut off
# from the database): written by the claim that takes the job over, the one that knows.
LEASE_LOST = "lease expired: the worker died or hung before finishing the attempt"


def with_entry(history: list[dict[str, Any]] | None, **entry: Any) -> list[dict[str, Any]]:
    """``history`` plus one entry, oldest dropped beyond :data:`HISTORY_MAX`."""
    return [*(history or [])[-(HISTORY_MAX - 1) :], entry]


def _failure(job: Job, now: datetime, error: str, outcome: str) -> list[dict[str, Any]]:
    # The claimed row carries its history, so recording an attempt costs no extra query.
    return with_entry(
        job.history, attempt=job.attempts, at=now.isoformat(), error=error, outcome=outcome
    )


@dataclass(frozen=True)
class QueueSettings:
    max_attempts: int = 8
    lease_seconds: float = 300
    backoff_base: float = 2
    backoff_cap: float = 3600

    @classmethod
    def from_config(cls, config: Any) -> QueueSettings:
        gs = config.gateway
        return cls(
            max_attempts=gs.job_max_attempts,
            lease_seconds=gs.job_lease_seconds,
            backoff_base=gs.job_backoff_base_seconds,
            backoff_cap=gs.job_backoff_cap_seconds,
        )


def jobs_for(
    event: Any,
    handlers: Iterable[EventHandler],
    settings: QueueSettings,
    now: datetime,
) -> list[Job]:
    """Unsaved job rows: one per handler that wants ``event.type``."""
    return [
        Job(
            event_id=event.id,
            team_id=event.team_id,
            handler=h.name,
            status=PENDING,
            attempts=0,
            max_attempts=h.max_attempts or settings.max_attempts,
            run_at=now,
            created_at=now,
            updated_at=now,
        )
        for h in handlers
        if h.wants(event.type)
    ]


def _lost_attempt(job: Job, now: datetime) -> list[dict[str, Any]]:
    return with_entry(
        job.history, attempt=job.attempts, at=now.isoformat(), error=LEASE_LOST, outcome="retry"
    )


def _due(now: datetime) -> Q:
    # Pending and due, or running with a lease that ended (its worker died).
    return Q(status=PENDING, run_at__lte=now) | Q(status=RUNNING, lease_until__lt=now)


async def claim(worker_id: str, now: datetime, settings: QueueSettings, db_url: str) -> Job | None:
    """Take one due job: status running, a lease, ``attempts`` + 1. ``None`` if idle.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` so concurrent workers take different rows
    without waiting. SQLite (one writer at a time): compare-and-set on ``attempts``.
    """
    lease = now + timedelta(seconds=settings.lease_seconds)
    if is_postgres(db_url):
        async with in_transaction() as conn:
            job = (
                await Job.filter(_due(now))
                .order_by("run_at", "id")
                .select_for_update(skip_locked=True)
                .using_db(conn)
                .first()
            )
            if job is None:
                return None
            await _take(job, worker_id, now, lease, conn)
            return job
    candidates = await Job.filter(_due(now)).order_by("run_at", "id").limit(8)
    for job in candidates:
        # A job taken over from a worker whose lease ended: that attempt is lost. The
        # compare-and-set includes the status, so a late failure written by that worker
        # in the meantime (and its history entry) is never overwritten.
        lost: dict[str, Any] = {}
        if job.status == RUNNING:
            lost = {"history": _lost_attempt(job, now), "last_error": LEASE_LOST}
        # run_at too: a job deferred (attempts given back) since it was read is not due.
        took = await Job.filter(
            _due(now), id=job.id, attempts=job.attempts, status=job.status
        ).update(
            status=RUNNING,
            attempts=job.attempts + 1,
            lease_until=lease,
            locked_by=worker_id,
            updated_at=now,
            **lost,
        )
        if took:
            job.status, job.attempts = RUNNING, job.attempts + 1
            job.lease_until, job.locked_by = lease, worker_id
            if lost:
                job.history, job.last_error = lost["history"], LEASE_LOST
            return job
    return None


async def _take(job: Job, worker_id: str, now: datetime, lease: datetime, conn: Any) -> None:
    fields = ["status", "attempts", "lease_until", "locked_by", "updated_at"]
    if job.status == RUNNING:  # its worker's lease ended: that attempt is lost
        job.history, job.last_error = _lost_attempt(job, now), LEASE_LOST
        fields += ["history", "last_error"]
    job.status, job.attempts, job.lease_until = RUNNING, job.attempts + 1, lease
    job.locked_by, job.updated_at = worker_id, now
    await job.save(using_db=conn, update_fields=fields)


def _mine(job: Job) -> Any:
    return Job.filter(id=job.id, locked_by=job.locked_by, attempts=job.attempts, status=RUNNING)


async def extend_lease(job: Job, now: datetime, settings: QueueSettings) -> bool:
    """Heartbeat for long handlers. ``False`` when the job is no longer ours."""
    lease = now + timedelta(seconds=settings.lease_seconds)
    return bool(await _mine(job).update(lease_until=lease, updated_at=now))


async def succeed(job: Job, now: datetime) -> bool:
    return bool(
        await _mine(job).update(
            status=SUCCEEDED, lease_until=None, last_error=None, updated_at=now, finished_at=now
        )
    )


def backoff_seconds(attempts: int, settings: QueueSettings, rng: random.Random) -> float:
    """``min(cap, base * 2**(attempts-1))`` with +-50% jitter, so retries of a burst of
    failures spread out instead of hitting the provider together."""
    raw = min(settings.backoff_cap, settings.backoff_base * 2 ** max(0, attempts - 1))
    return raw * rng.uniform(0.5, 1.5)


async def fail(
    job: Job,
    now: datetime,
    error: str,
    *,
    retry_in: float | None,
) -> str:
    """Record a failed attempt. ``retry_in=None`` or no attempts left: dead-letter.
    Returns the new status (or ``""`` if the job was no longer ours)."""
    error = error[:ERROR_MAX_CHARS]
    if retry_in is None or job.attempts >= job.max_attempts:
        done = await _mine(job).update(
            status=DEAD,
            lease_until=None,
            last_error=error,
            history=_failure(job, now, error, "dead"),
            updated_at=now,
            finished_at=now,
        )
        return DEAD if done else ""
    done = await _mine(job).update(
        status=PENDING,
        run_at=now + timedelta(seconds=max(0.0, retry_in)),
        lease_until=None,
        locked_by=None,
        last_error=error,
        history=_failure(job, now, error, "retry"),
        updated_at=now,
    )
    return PENDING if done else ""


async def defer(job: Job, now: datetime, seconds: float) -> bool:
    """Run the job again after ``seconds`` without counting this attempt (a rate limiter
    had no free slot: waiting is not failing). History and last error are untouched."""
    return bool(
        await _mine(job).update(
            status=PENDING,
            attempts=job.attempts - 1,
            run_at=now + timedelta(seconds=max(0.0, seconds)),
            lease_until=None,
            locked_by=None,
            updated_at=now,
        )
    )


async def release(job: Job, now: datetime) -> bool:
    """Give an unfinished job back (shutdown): runnable now, the attempt not counted."""
    return bool(
        await _mine(job).update(
            status=PENDING,
            attempts=job.attempts - 1,
            run_at=now,
            lease_until=None,
            locked_by=None,
            updated_at=now,
        )
    )


async def dead_letter_exhausted(job: Job, now: datetime) -> bool:
    """A reclaimed job past its attempts (its workers kept dying): dead, not run again."""
    died = job.attempts - 1
    earlier = list(job.history or [])
    if earlier and earlier[-1].get("attempt") == died and earlier[-1].get("error") == LEASE_LOST:
        earlier.pop()  # the claim noted it as lost; it is the last one: say dead instead
    history = with_entry(
        earlier,
        attempt=died,  # this claim did not run: name the attempt that died
        at=now.isoformat(),
        error=LEASE_EXPIRED,
        outcome="dead",
    )
    return bool(
        await _mine(job).update(
            status=DEAD,
            lease_until=None,
            last_error=LEASE_EXPIRED,
            history=history,
            updated_at=now,
            finished_at=now,
        )
    )


async def retry_dead(job_id: int, now: datetime) -> bool:
    """A dead job gets a fresh set of attempts, runnable now; its history is kept, with
    the retry noted. Only dead jobs: retrying a pending or running one could run it
    twice."""
    job = await Job.get_or_none(id=job_id, status=DEAD)
    if job is None:
        return False
    history = with_entry(job.history, at=now.isoformat(), outcome="requeued")
    return bool(
        await Job.filter(id=job_id, status=DEAD).update(
            status=PENDING,
            attempts=0,
            run_at=now,
            lease_until=None,
            locked_by=None,
            finished_at=None,
            history=history,
            updated_at=now,
        )
    )
