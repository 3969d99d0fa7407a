"""Rate limits for the auth, setup and integration endpoints (never for webhooks: those
are event-driven, and a sender that is throttled retries and piles up).

Counting is done by the ``limits`` library with a moving window, in process memory by
default or in Redis when ``[gateway] rate_limit_storage = "redis://..."`` so every
replica shares one count. ``limits`` reads the wall clock itself, not ``gw.clock``:
for throttling that is the right clock (a frozen test clock must not freeze the
limiter), and tests reset by using a fresh key instead of waiting.

Usage::

    await ratelimit.hit(app, "login", ratelimit.client_key(request), "10/minute")

    @bp.post("/api/integrations/<name>/sync")
    @rate_limited("integrations", "120/minute")
    async def sync(name): ...
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from quart import Quart, Request, current_app, request

from gateway.errors import GatewayError, RateLimited, ServiceUnavailable

log = logging.getLogger("gateway.ratelimit")

EXTENSION = "gateway_ratelimit"
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class _Limiter:
    """One storage + strategy per app; the storage opens its connection lazily."""

    def __init__(self, url: str) -> None:
        self.storage: Storage = _storage(url)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._items: dict[str, RateLimitItem] = {}

    def item(self, limit: str) -> RateLimitItem:
        parsed = self._items.get(limit)
        if parsed is None:
            parsed = self._items[limit] = parse(limit)
        return parsed

    async def close(self) -> None:
        timer = getattr(self.storage, "timer", None)  # memory storage's expiry task
        if timer is not None and not timer.done():
            timer.cancel()
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


def _storage(url: str) -> Storage:
    scheme = url.split("://", 1)[0]
    if scheme.startswith("async+"):
        return storage_from_string(url)  # type: ignore[return-value]
    options: dict[str, Any] = {}
    if scheme in {"redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"}:
        options["implementation"] = "redispy"  # redis-py is installed; coredis is not needed
    return storage_from_string(f"async+{url}", **options)  # type: ignore[return-value]


def _limiter(app: Quart) -> _Limiter:
    limiter = app.extensions.get(EXTENSION)
    if limiter is None:
        gw = app.extensions["gateway"]
        limiter = app.extensions[EXTENSION] = _Limiter(gw.config.gateway.rate_limit_storage)
    return limiter


async def close(app: Quart) -> None:
    """Release the app's limiter storage (called from the core's shutdown hook)."""
    limiter = app.extensions.pop(EXTENSION, None)
    if limiter is not None:
        await limiter.close()


def _identifier(scope: str, key: str) -> str:
    # Keys can be e-mail addresses or IPs: store a digest, not personal data, in Redis.
    return hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()[:32]


async def hit(app: Quart, scope: str, key: str, limit: str) -> None:
    """Count one hit of ``key`` in ``scope`` against ``limit`` (a ``limits`` string like
    ``"5/minute"``).

    :raises RateLimited: when over the limit; ``Retry-After`` is the seconds until the
        oldest hit in the window expires.
    :raises ServiceUnavailable: when the storage (Redis) cannot be reached: 503, not an
        unthrottled pass, since these endpoints guard passwords and setup tokens.
    """
    limiter = _limiter(app)
    item = limiter.item(limit)
    ident = _identifier(scope, key)
    try:
        if await limiter.strategy.hit(item, "gateway", scope, ident):
            return
        stats = await limiter.strategy.get_window_stats(item, "gateway", scope, ident)
    except Exception as exc:  # storage down: fail closed, these endpoints guard secrets
        log.error("rate limit storage failed (%s); refusing %s", type(exc).__name__, scope)
        raise ServiceUnavailable("Rate limiter unavailable") from None
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    raise RateLimited(retry_after=retry_after)


def client_key(req: Request | None = None) -> str:
    """The client's address. ``X-Forwarded-For`` is believed only for the number of
    proxies configured in ``[gateway] trusted_proxy_hops``: each trusted proxy appends
    the address it saw, so the client is that many entries from the right; anything a
    client writes further left is ignored.

    Every header line counts, in order (RFC 9110 5.3: repeated lines are one
    comma-separated list): a proxy may add its own line instead of appending to the
    client's, and reading only the first line would then trust the client's."""
    req = req if req is not None else request
    hops = current_app.extensions["gateway"].config.gateway.trusted_proxy_hops
    if hops > 0:
        lines = req.headers.getlist("X-Forwarded-For")
        chain = [p.strip() for line in lines for p in line.split(",")]
        chain = [p for p in chain if p]
        if chain:
            return chain[-hops] if len(chain) >= hops else chain[0]
    return req.remote_addr or "unknown"


def rate_limited(scope: str, limit: str) -> Callable[[F], F]:
    """Route decorator: one hit per request, keyed by the authenticated user when there
    is one, else by the client address (so bad-credential guessing is throttled too)."""

    def decorator(fn: F) -> F:
        @wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            from gateway.auth.principal import current_principal

            try:
                principal = await current_principal()
            except GatewayError:
                principal = None  # the route itself answers 401 after the count
            key = f"user:{principal.user_id}" if principal else f"ip:{client_key()}"
            await hit(current_app._get_current_object(), scope, key, limit)  # type: ignore[attr-defined]
            return await fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
