"""Provider rate limits: never more than N per window, per account, in memory, in the
database (PostgreSQL, shared by processes) and in Redis; a full limiter says how long
to wait."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.sync import RateLimit
from gateway.sync.limiter import (
    ProviderLimiter,
    _DatabaseBackend,
    _RedisBackend,
    limiter_of,
    window_of,
)
from tests.conftest import REDIS_URL, _in_ci

LIMITS = (RateLimit(5, 10), RateLimit(2, 10, bucket="search"))


async def _exercise(limiters: list[ProviderLimiter]) -> None:
    key = f"acme:{uuid.uuid4().hex}"
    results = await asyncio.gather(
        *(limiters[i % len(limiters)].acquire(key, LIMITS, "api") for i in range(12))
    )
    granted = [w for w in results if w == 0]
    assert len(granted) == 5  # never more than the limit, whichever process asks
    # (concurrent callers read the clock before their turn: a few ms either way)
    assert all(0 < w <= window_of(LIMITS[0]) + 0.1 for w in results if w)
    # The search bucket has its own, lower limit on top of the account's.
    other = f"acme:{uuid.uuid4().hex}"
    searches = [await limiters[0].acquire(other, LIMITS, "search") for _ in range(3)]
    assert [w == 0 for w in searches] == [True, True, False]
    assert await limiters[0].acquire(other, LIMITS, "api") == 0  # 3 of 5 used


async def test_memory_limiter(any_app):
    limiter = limiter_of(any_app)
    if limiter.kind == "database":
        await _exercise([limiter, ProviderLimiter(_DatabaseBackend(), "database")])
    else:
        assert limiter.kind == "memory"
        await _exercise([limiter])


async def test_redis_limiter_is_shared(make_app):
    try:
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        await client.ping()
        await client.aclose()
    except Exception as exc:
        if _in_ci():
            pytest.fail(f"Redis is required in CI and did not answer: {exc!r}")
        pytest.skip(f"Redis did not answer: {exc!r}")
    app = await make_app(rate_limit_storage=REDIS_URL)
    assert limiter_of(app).kind == "redis"
    other = ProviderLimiter(_RedisBackend(REDIS_URL), "redis")
    try:
        await _exercise([limiter_of(app), other])
    finally:
        await other.close()


async def test_jobs_deferred_by_a_limiter_keep_their_attempts(make_app, clock):
    from gateway import hookimpl
    from gateway.events import EventHandler, RetryLater, emit_event
    from gateway.jobs.models import Job
    from gateway.jobs.worker import run_pending_jobs

    runs: list[int] = []

    class Waiter:
        @hookimpl
        def register_event_handlers(self, config):
            async def run(ctx):
                runs.append(ctx.job.attempts)
                if len(runs) < 4:
                    raise RetryLater(5, "no slot", count_attempt=False)

            return [EventHandler("waiter.run", ("test.wait",), run, max_attempts=2)]

    app = await make_app(plugins={"waiter": {}}, extra_plugins=[("waiter", Waiter())])
    await emit_event(app, source="t", type="test.wait", payload={}, dedup_key="w1")
    for _ in range(4):
        await run_pending_jobs(app)
        clock.advance(5)
    job = await Job.get(handler="waiter.run")
    # Deferred three times with max_attempts=2 and still alive: waits are not failures.
    assert runs == [1, 1, 1, 1] and job.status == "succeeded"
    assert job.history is None and job.last_error is None
