"""Run the job queue in the test's own task: what the worker would do, now."""

from __future__ import annotations

from quart import Quart


async def drain(app: Quart, *, rounds: int = 10, limit: int = 1000) -> int:
    """Run every due job, then the jobs those jobs queued, until nothing is due (or
    ``rounds`` passes). Jobs scheduled for later (a retry after ``Retry-After``) stay
    queued: advance the frozen clock and drain again. Returns how many jobs ran."""
    from gateway.jobs.worker import run_pending_jobs

    total = 0
    for _ in range(rounds):
        ran = await run_pending_jobs(app, limit=limit)
        total += ran
        if ran == 0:
            break
    return total
