"""Provider rate limits, per provider account, shared by every worker process.

A request takes a slot of each limit that applies to it before it is sent; when one has
no free slot the caller gets the seconds until one opens, and a job is rescheduled for
then (``RetryLater(..., count_attempt=False)``): a backlog drains at the provider's pace
and never sleeps in a worker.

Where the counts live (sliding logs, so a window never admits more than its limit):

- ``[gateway] rate_limit_storage = "redis://..."``: Redis, through the ``limits``
  library's moving window (one count for every replica);
- else, on PostgreSQL: a row per limit in ``sync_rate_windows``, updated under
  ``SELECT ... FOR UPDATE`` (every process on that database shares it);
- else (SQLite, the embedded single-process mode): process memory (``limits``).

Times are wall-clock unix seconds (like gateway/ratelimit.py: a frozen test clock must
not freeze a provider's limit).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from tortoise.transactions import in_transaction

from gateway.sync.contract import DEFAULT_BUCKET, RateLimit
from gateway.sync.models import RateWindow

log = logging.getLogger("gateway.sync")

EXTENSION = "gateway_sync_limiter"


def applicable(limits: Sequence[RateLimit], bucket: str) -> list[RateLimit]:
    """The limits a request in ``bucket`` counts against."""
    return [lim for lim in limits if lim.bucket in (DEFAULT_BUCKET, bucket)]


def _key(account_key: str, limit: RateLimit) -> str:
    return f"{account_key}|{limit.bucket}|{limit.requests}/{limit.seconds}"


class _LimitsBackend:
    """Memory or Redis, through ``limits``' moving window."""

    def __init__(self, url: str) -> None:
        from gateway.ratelimit import _storage

        self.storage = _storage(url)
        self.strategy = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def _item(limit: RateLimit) -> Any:
        return RateLimitItemPerSecond(limit.requests, limit.seconds)

    async def take(self, key: str, limit: RateLimit) -> float:
        item = self._item(limit)
        if await self.strategy.hit(item, "gateway-provider", key):
            return 0.0
        stats = await self.strategy.get_window_stats(item, "gateway-provider", key)
        return max(0.001, stats.reset_time - time.time())

    async def close(self) -> None:
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


class _DatabaseBackend:
    """A sliding log per limit in one row, read and written under a row lock."""

    async def take(self, key: str, limit: RateLimit) -> float:
        async with in_transaction() as conn:
            fresh = [RateWindow(key=key, hits=[])]
            await RateWindow.bulk_create(fresh, ignore_conflicts=True, using_db=conn)
            row = await RateWindow.filter(key=key).select_for_update().using_db(conn).first()
            assert row is not None
            now = time.time()
            hits = [t for t in (row.hits or []) if t > now - limit.seconds]
            if len(hits) < limit.requests:
                hits.append(now)
                await RateWindow.filter(key=key).using_db(conn).update(hits=hits)
                return 0.0
            if len(hits) != len(row.hits or []):
                await RateWindow.filter(key=key).using_db(conn).update(hits=hits)
            return max(0.001, hits[0] + limit.seconds - now)

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

    async def close(self) -> None:
        await self.backend.close()


def build(gw: Any) -> ProviderLimiter:
    from gateway.db import is_postgres

    url = str(gw.config.gateway.rate_limit_storage)
    if url.split("://", 1)[0] not in {"memory", "async+memory"}:
        return ProviderLimiter(_LimitsBackend(url), "redis")
    if is_postgres(gw.db.url):
        return ProviderLimiter(_DatabaseBackend(), "database")
    return ProviderLimiter(_LimitsBackend("memory://"), "memory")


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
