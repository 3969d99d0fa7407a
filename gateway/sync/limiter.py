"""Provider rate limits, per provider account, shared by every worker process.

A request takes a slot of each limit that applies to it before it is sent; when one has
no free slot the caller gets the seconds until one opens, and a job is rescheduled for
then (``RetryLater(..., count_attempt=False)``): a backlog drains at the provider's pace
and never sleeps in a worker.

Every limit is a sliding log of request times (so no window of the limit's length ever
holds more than its count), kept:

- in Redis when ``[gateway] rate_limit_storage = "redis://..."`` (a sorted set per limit,
  updated by one Lua script: atomic, one count for every replica);
- else, on PostgreSQL, in a row per limit of ``sync_rate_windows``, updated under
  ``SELECT ... FOR UPDATE`` (every process on that database shares it);
- else (SQLite, the embedded single-process mode) in process memory.

The window is widened by :data:`MARGIN_FRACTION` (at least :data:`MARGIN_MIN_SECONDS`):
a provider counts requests when they *arrive*, and two requests sent exactly one window
apart can arrive less than a window apart. Times are wall-clock unix seconds (like
gateway/ratelimit.py: a frozen test clock must not freeze a provider's limit).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

from tortoise.transactions import in_transaction

from gateway.sync.contract import DEFAULT_BUCKET, RateLimit
from gateway.sync.models import RateWindow

log = logging.getLogger("gateway.sync")

EXTENSION = "gateway_sync_limiter"
MARGIN_FRACTION = 0.02
MARGIN_MIN_SECONDS = 0.2


def applicable(limits: Sequence[RateLimit], bucket: str) -> list[RateLimit]:
    """The limits a request in ``bucket`` counts against."""
    return [lim for lim in limits if lim.bucket in (DEFAULT_BUCKET, bucket)]


def window_of(limit: RateLimit) -> float:
    """The window the log keeps: the limit's, widened by the arrival margin."""
    return limit.seconds + max(MARGIN_MIN_SECONDS, limit.seconds * MARGIN_FRACTION)


def _key(account_key: str, limit: RateLimit) -> str:
    return f"gateway:ratelimit:{account_key}|{limit.bucket}|{limit.requests}/{limit.seconds}"


def _decide(hits: list[float], limit: RateLimit, now: float) -> tuple[list[float], float]:
    """``(hits kept, wait)``: ``wait`` 0 means granted (``now`` was appended)."""
    window = window_of(limit)
    kept = [t for t in hits if t > now - window]
    if len(kept) < limit.requests:
        kept.append(now)
        return kept, 0.0
    return kept, max(0.001, kept[-limit.requests] + window - now)


class _MemoryBackend:
    """One process: a list per limit (no await between read and write, so no lock)."""

    def __init__(self) -> None:
        self.logs: dict[str, list[float]] = {}

    async def take(self, key: str, limit: RateLimit) -> float:
        self.logs[key], wait = _decide(self.logs.get(key, []), limit, time.time())
        return wait

    async def peek(self, key: str, limit: RateLimit) -> float:
        return _decide(list(self.logs.get(key, [])), limit, time.time())[1]

    async def close(self) -> None:
        self.logs.clear()


# KEYS[1] the sorted set; ARGV now, window, limit, member. Returns "0" (granted) or the
# seconds until the oldest entry that blocks leaves the window.
_REDIS_TAKE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return '0'
end
local blocking = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tostring(tonumber(blocking[2]) + window - now)
"""

# The same question without taking the slot (ARGV now, window, limit).
_REDIS_PEEK = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count = redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf')
if count < limit then
  return '0'
end
local blocking = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
return tostring(tonumber(blocking[2]) + window - now)
"""


class _RedisBackend:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url)
        self.script = self.client.register_script(_REDIS_TAKE)
        self.peek_script = self.client.register_script(_REDIS_PEEK)

    async def take(self, key: str, limit: RateLimit) -> float:
        now = time.time()
        args: list[str | int] = [
            repr(now),
            repr(window_of(limit)),
            limit.requests,
            uuid.uuid4().hex,
        ]
        wait = float(await self.script(keys=[key], args=args))
        return max(0.001, wait) if wait > 0 else 0.0

    async def peek(self, key: str, limit: RateLimit) -> float:
        args: list[str | int] = [repr(time.time()), repr(window_of(limit)), limit.requests]
        wait = float(await self.peek_script(keys=[key], args=args))
        return max(0.001, wait) if wait > 0 else 0.0

    async def close(self) -> None:
        await self.client.aclose()


class _DatabaseBackend:
    """A sliding log per limit in one row, read and written under a row lock."""

    async def take(self, key: str, limit: RateLimit) -> float:
        async with in_transaction() as conn:
            fresh = [RateWindow(key=key, hits=[])]
            await RateWindow.bulk_create(fresh, ignore_conflicts=True, using_db=conn)
            row = await RateWindow.filter(key=key).select_for_update().using_db(conn).first()
            assert row is not None
            hits, wait = _decide(list(row.hits or []), limit, time.time())
            if hits != (row.hits or []):
                await RateWindow.filter(key=key).using_db(conn).update(hits=hits)
            return wait

    async def peek(self, key: str, limit: RateLimit) -> float:
        row = await RateWindow.get_or_none(key=key)
        return _decide(list(row.hits or []) if row else [], limit, time.time())[1]

    async def close(self) -> None:
        return None


class ProviderLimiter:
    """One per app (``limiter_of(app)``)."""

    def __init__(self, backend: Any, kind: str) -> None:
        self.backend, self.kind = backend, kind

    async def acquire(self, account_key: str, limits: Sequence[RateLimit], bucket: str) -> float:
        """Take one slot of every limit that applies. ``0`` when granted; otherwise the
        seconds until a slot opens (slots already taken for this request are not given
        back, which only ever errs on the side of sending less)."""
        for limit in applicable(limits, bucket):
            wait = await self.backend.take(_key(account_key, limit), limit)
            if wait > 0:
                return math.ceil(wait * 1000) / 1000
        return 0.0

    async def available(self, account_key: str, limits: Sequence[RateLimit], bucket: str) -> float:
        """Whether a request could go now, taking nothing: ``0``, or the seconds until
        a slot of every applicable limit is free."""
        waits = [
            await self.backend.peek(_key(account_key, lim), lim)
            for lim in applicable(limits, bucket)
        ]
        return math.ceil(max(waits, default=0.0) * 1000) / 1000

    async def close(self) -> None:
        await self.backend.close()


def build(gw: Any) -> ProviderLimiter:
    from gateway.db import is_postgres

    url = str(gw.config.gateway.rate_limit_storage)
    if url.split("://", 1)[0] in {"redis", "rediss", "redis+unix"}:
        return ProviderLimiter(_RedisBackend(url), "redis")
    if is_postgres(gw.db.url):
        return ProviderLimiter(_DatabaseBackend(), "database")
    return ProviderLimiter(_MemoryBackend(), "memory")


def limiter_of(app: Any) -> ProviderLimiter:
    gw = app.extensions["gateway"]
    limiter = app.extensions.get(EXTENSION)
    if limiter is None:
        limiter = app.extensions[EXTENSION] = build(gw)
        log.debug("provider rate limits kept in %s", limiter.kind)
    return limiter


async def close(app: Any) -> None:
    limiter = app.extensions.pop(EXTENSION, None)
    if limiter is not None:
        await limiter.close()
