"""Signing keys: the shared HS256 secret, or a provider's JWKS fetched over HTTP.

The JWKS is cached for ``jwks_cache_seconds`` on the gateway clock. A token whose ``kid``
is not in the cache triggers one refetch (the provider may have rotated its keys), but
never more often than ``jwks_min_refresh_seconds``: otherwise anyone could make us hammer
the provider by sending tokens with made-up kids. When a refetch fails the last good
keys keep working, so a provider blip does not log everybody out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from joserfc.jwk import JWKRegistry, Key

from gateway.clock import Clock
from gateway.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger("gateway.plugins.jwt_auth")

MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)


class JwksError(Exception):
    """The key set could not be fetched or read (the reason, never a key)."""


def parse_jwks(data: Any) -> dict[str | None, Key]:
    """``{kid: key}`` of the usable signature keys. Keys for encryption, symmetric keys
    (a JWKS is public; an ``oct`` key in it would be a secret anyone can read) and keys
    joserfc cannot load are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError("not a JWK set (no 'keys' list)")
    keys: dict[str | None, Key] = {}
    for raw in data["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig" or raw.get("kty") == "oct":
            continue
        try:
            key = JWKRegistry.import_key(raw)
        except Exception as exc:  # one odd key must not hide the others
            log.warning("JWKS: skipped a key it cannot load (%s)", type(exc).__name__)
            continue
        keys[raw.get("kid")] = key
    if not keys:
        raise JwksError("no usable signature keys")
    return keys


class JwksCache:
    def __init__(
        self, url: str, clock: Clock, cache_seconds: int, min_refresh_seconds: int
    ) -> None:
        self.url = url
        self.clock = clock
        self.ttl = timedelta(seconds=cache_seconds)
        self.min_refresh = timedelta(seconds=min_refresh_seconds)
        self.keys: dict[str | None, Key] = {}
        self.fetched_at: datetime | None = None
        self.attempted_at: datetime | None = None
        self.fetches = 0  # fetch attempts, for the operator (and the tests)
        self._lock = asyncio.Lock()

    async def key_for(self, http: aiohttp.ClientSession, kid: str | None) -> Key:
        """The key a token names, refetching once when it is not known.

        :raises Unauthorized: the provider does not publish that key.
        :raises ServiceUnavailable: no keys could ever be fetched.
        """
        before = self.fetches
        now = self.clock.now()
        if self.fetched_at is None or now - self.fetched_at >= self.ttl:
            await self._refresh(http)
        key = self._find(kid)
        # One fetch per request at most: a set fetched just now is already the newest.
        if key is None and self.fetches == before and self._may_refetch(self.clock.now()):
            await self._refresh(http)
            key = self._find(kid)
        if key is None:
            raise Unauthorized("Token signed with an unknown key")
        return key

    def _find(self, kid: str | None) -> Key | None:
        if kid is None:
            # Without a kid only an unambiguous set can answer.
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    def _may_refetch(self, now: datetime) -> bool:
        return self.attempted_at is None or now - self.attempted_at >= self.min_refresh

    async def _refresh(self, http: aiohttp.ClientSession) -> None:
        generation = self.fetches
        async with self._lock:
            # Requests that queued behind a fetch use its result instead of repeating it,
            # and nobody fetches more often than the minimum interval, failures included.
            if self.fetches == generation and self._may_refetch(self.clock.now()):
                await self._fetch_into_cache(http)
        if not self.keys:
            raise ServiceUnavailable("Identity provider keys are unavailable")

    async def _fetch_into_cache(self, http: aiohttp.ClientSession) -> None:
        self.attempted_at = self.clock.now()
        self.fetches += 1
        try:
            keys = await self._fetch(http)
        except JwksError as exc:
            if self.keys:
                log.warning("JWKS fetch failed, keeping the cached keys: %s", exc)
            else:
                log.error("JWKS fetch failed and no keys are cached: %s", exc)
            return
        self.keys, self.fetched_at = keys, self.clock.now()
        log.info("JWKS fetched: %d signature key(s)", len(keys))

    async def _fetch(self, http: aiohttp.ClientSession) -> dict[str | None, Key]:
        try:
            async with http.get(
                self.url,
                timeout=FETCH_TIMEOUT,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as resp:
                if resp.status != 200:
                    raise JwksError(f"HTTP {resp.status}")
                body = await resp.content.read(MAX_JWKS_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JwksError(type(exc).__name__) from None
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"larger than {MAX_JWKS_BYTES} bytes")
        try:
            return parse_jwks(json.loads(body))
        except ValueError:
            raise JwksError("not JSON") from None
