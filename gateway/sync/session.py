"""Calling a provider's API as a team, from handlers, tasks and the lookup: one helper
for what every provider plugin would otherwise write again.

``ProviderSession.request`` takes a slot of the provider's rate limits, sends the team's
access token, and on "token rejected" (HTTP 401 by default) refreshes the token once
(shared with concurrent callers by the OAuth engine) and retries once. What comes back
is turned into what the job queue understands:

===========================  ===========================================================
the provider answers          the caller gets
===========================  ===========================================================
2xx / 3xx                     a :class:`ProviderResponse`
429 (or ``throttled``)        :class:`ProviderThrottled` (a ``RetryLater`` after
                              ``Retry-After``, not counted as an attempt)
no free rate-limit slot       ``RetryLater`` (seconds until a slot, not counted); nothing
                              is sent
5xx, timeout, network         :class:`ProviderUnavailable`: the job retries with backoff
401 again after a refresh     :class:`ProviderAuthFailed` (dead-lettered: a permanent
                              refusal, with the reason in the job list)
other 4xx                     :class:`ProviderError` (``.status``, ``.body``): catch what
                              you expect (a 404); uncaught it dead-letters the job
===========================  ===========================================================

The engine's token errors (``NotConnected``, ``ReconnectRequired``) pass through;
``TokenUnavailable`` becomes a ``RetryLater``. No token and no body is ever logged.
``requests_sent`` counts the requests that went out, so a caller that committed "a
request is going out" can tell, on a ``RetryLater``, that none did.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.events import PermanentFailure, RetryLater
from gateway.oauth.tokens import TokenUnavailable, get_access_token
from gateway.sync.contract import DEFAULT_BUCKET, RateLimit
from gateway.sync.limiter import limiter_of

log = logging.getLogger("gateway.sync")

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
DEFAULT_RETRY_AFTER = 10.0  # a 429 that does not say how long to wait


@dataclass
class ProviderResponse:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, else the text, else None

    def json(self) -> Any:
        return self.body


class ProviderUnavailable(Exception):
    """A 5xx, a timeout or a network error: transient, retried with backoff."""


class ProviderThrottled(RetryLater):
    """The provider answered 429: run again after its ``Retry-After``."""


class ProviderError(PermanentFailure):
    """A 4xx the caller did not handle: ``status``, ``body`` (parsed), ``marker`` (the
    provider's error category, if it gave one). Permanent unless caught."""

    def __init__(self, provider: str, method: str, path: str, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.marker = _marker(body)
        message = _message(body)
        detail = f" {self.marker}" if self.marker else ""
        detail += f": {message}" if message else ""
        super().__init__(f"{provider} refused {method} {path}: HTTP {status}{detail}")


class ProviderAuthFailed(PermanentFailure):
    """The provider refused a freshly refreshed token (scopes or consent removed)."""


def _marker(body: Any) -> str | None:
    if isinstance(body, Mapping):
        for key in ("category", "errorCode", "error", "code", "status"):
            value = body.get(key)
            if isinstance(value, str) and value and value != "error":
                return value[:60]
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        return _marker(body[0])
    return None


def _message(body: Any) -> str | None:
    if isinstance(body, Mapping):
        value = body.get("message") or body.get("error_description")
        return str(value)[:200] if value else None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        return _message(body[0])
    return None


def retry_after_seconds(value: str | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _default_rejected(status: int, body: Any) -> bool:
    return status == 401


def _default_throttled(status: int, body: Any) -> bool:
    return status == 429


class ProviderSession:
    """A team's session to one provider's API (see the module docstring).

    :param app: the Quart app (``ctx.app``).
    :param team_id: whose connection and tokens.
    :param provider: the OAuth provider name.
    :param base_url: joined to relative paths given to :meth:`request`; or
        ``(account data) -> url`` when it depends on the connection (an instance URL),
        read from the stored connection before the first request and again after each
        token refresh (a refresh may move the account to another host).
    :param limits: the provider's rate limits; :param limit_key: the account they count
        for (``"<provider>:<account id>"``). No limits: requests are not counted.
    :param token_rejected: ``(status, body) -> bool``, default "HTTP 401".
    :param throttled: ``(status, body) -> bool``, default "HTTP 429": answers that mean
        "too many requests" (a provider may also say so with a 403 and its own reason);
        they defer the caller by ``Retry-After`` like a 429.
    """

    def __init__(
        self,
        app: Any,
        team_id: int,
        provider: str,
        *,
        base_url: str | Callable[[Mapping[str, Any]], str] = "",
        limits: Sequence[RateLimit] = (),
        limit_key: str | None = None,
        token_rejected: Callable[[int, Any], bool] | None = None,
        throttled: Callable[[int, Any], bool] | None = None,
        timeout: aiohttp.ClientTimeout = TIMEOUT,
    ) -> None:
        self.app, self.team_id, self.provider = app, team_id, provider
        self._base_of = base_url if callable(base_url) else None
        self.base_url = "" if callable(base_url) else base_url.rstrip("/")
        self.limits = tuple(limits)
        self.limit_key = limit_key or f"{provider}:team{team_id}"
        self.token_rejected = token_rejected or _default_rejected
        self.throttled = throttled or _default_throttled
        self.timeout = timeout
        self._token: str | None = None
        self.requests_sent = 0  # requests that went out (a caller can tell "nothing sent")

    async def __aenter__(self) -> ProviderSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    # -- rate limits ------------------------------------------------------------------

    async def ready(self, bucket: str = DEFAULT_BUCKET) -> None:
        """Defer the caller unless a request in ``bucket`` could go now (nothing is
        taken: the slot is taken when the request is sent). Call it before work that
        would be wasted while the provider's limit is full.

        :raises RetryLater: no free slot (not counted as an attempt).
        """
        if not self.limits:
            return
        wait = await limiter_of(self.app).available(self.limit_key, self.limits, bucket)
        if wait > 0:
            self._defer(wait)

    def _defer(self, wait: float) -> None:
        reason = f"waiting {wait:.2f}s for a {self.provider} rate-limit slot"
        raise RetryLater(wait, reason, count_attempt=False)

    async def _slot(self, bucket: str) -> None:
        # Taken right before the request goes out: the provider counts arrivals, so the
        # time we record must be the time we send.
        if not self.limits:
            return
        wait = await limiter_of(self.app).acquire(self.limit_key, self.limits, bucket)
        if wait > 0:
            self._defer(wait)

    # -- requests ------------------------------------------------------------------------

    async def _access_token(self, rejected: str | None = None) -> str:
        try:
            return await get_access_token(
                self.team_id, self.provider, rejected=rejected, app=self.app
            )
        except TokenUnavailable as exc:
            raise RetryLater(float(exc.retry_after or 30), str(exc.message)) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        bucket: str = DEFAULT_BUCKET,
    ) -> ProviderResponse:
        """Send one request (see the module docstring for what each answer becomes).

        :param path: a path under ``base_url``, or an absolute URL.
        :param bucket: the rate-limit bucket this endpoint counts against besides the
            ``"api"`` one (e.g. ``"search"``).
        """
        if self._token is None:
            self._token = await self._access_token()
            await self._rebase()
        refreshed = False
        while True:
            url = path if "://" in path else f"{self.base_url}{path}"
            await self._slot(bucket)
            response = await self._send(method, url, path, json, params, headers)
            if self.token_rejected(response.status, response.body):
                if refreshed:
                    raise ProviderAuthFailed(
                        f"{self.provider} refused a freshly refreshed token "
                        f"(HTTP {response.status} on {method} {path}): connect it again"
                    )
                self._token = await self._access_token(rejected=self._token)
                await self._rebase()
                refreshed = True
                continue
            break
        status = response.status
        if self.throttled(status, response.body):
            seconds = retry_after_seconds(response.headers.get("Retry-After"))
            log.info("%s throttled %s %s: retry in %.1fs", self.provider, method, path, seconds)
            raise ProviderThrottled(
                seconds,
                f"{self.provider} answered {status} to {method} {path}",
                count_attempt=False,
            )
        if status >= 500:
            raise ProviderUnavailable(f"{self.provider} answered HTTP {status} to {method} {path}")
        if status >= 400:
            raise ProviderError(self.provider, method, path, status, response.body)
        return response

    async def _rebase(self) -> None:
        if self._base_of is None:
            return
        from gateway.oauth.models import OAuthConnection

        row = await OAuthConnection.get_or_none(team_id=self.team_id, provider=self.provider)
        account = dict(row.account_data or {}) if row is not None else {}
        self.base_url = str(self._base_of(account)).rstrip("/")

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> ProviderResponse:
        http = self.app.extensions["gateway"].http
        sent_headers = {"Accept": "application/json", **(headers or {})}
        sent_headers["Authorization"] = f"Bearer {self._token}"
        self.requests_sent += 1
        try:
            async with http.request(
                method, url, json=json, params=params, headers=sent_headers, timeout=self.timeout
            ) as resp:
                text = await resp.text()
                status, resp_headers = resp.status, dict(resp.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderUnavailable(
                f"{self.provider} unreachable on {method} {path}: {type(exc).__name__}"
            ) from None
        body: Any = None
        if text:
            try:
                body = jsonlib.loads(text)
            except ValueError:
                body = text[:1000]
        return ProviderResponse(status, resp_headers, body)
