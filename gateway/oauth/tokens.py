"""Access tokens for plugins: ``await get_access_token(team, provider)``.

A token is refreshed when it expires within :data:`REFRESH_AHEAD`, or when the caller
says the provider just rejected it (``rejected=<that token>``). Exactly one refresh runs
per connection at a time: in one process an ``asyncio.Lock`` per (team, provider) queues
the callers; across processes on PostgreSQL the refresh runs inside a transaction holding
``SELECT ... FOR UPDATE`` on the connection row. Every waiter re-reads the row after it
gets the lock and refreshes only if the token is still stale, so the rest reuse the
token the first one stored. (SQLite is the single-process embedded mode: the local lock
is the whole story there.)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from quart import Quart
from tortoise.transactions import in_transaction

from gateway.errors import GatewayError
from gateway.oauth import common
from gateway.oauth.client import TokenEndpointError, token_request
from gateway.oauth.models import OAuthConnection

if TYPE_CHECKING:  # pragma: no cover
    from gateway.app import Gateway

log = logging.getLogger("gateway.oauth")

REFRESH_AHEAD = timedelta(minutes=5)
LOCKS = "gateway_oauth_locks"


class OAuthTokenError(GatewayError):
    """Base of the typed errors :func:`get_access_token` raises."""

    def __init__(self, team_id: int, provider: str, message: str | None = None, **kw: Any):
        super().__init__(message, extra={"provider": provider}, **kw)
        self.team_id, self.provider = team_id, provider


class NotConnected(OAuthTokenError):
    status, code, message = 409, "NOT_CONNECTED", "The integration is not connected"


class ReconnectRequired(OAuthTokenError):
    """The provider no longer accepts the refresh token (``invalid_grant``): an admin
    must connect again. The connection's status is ``needs_reconnect``."""

    status, code, message = 409, "NEEDS_RECONNECT", "The integration must be connected again"


class TokenUnavailable(OAuthTokenError):
    """The refresh failed for a reason that may pass (5xx, 429, network). Retry later;
    ``retry_after`` is the provider's hint in seconds, when it gave one."""

    status, code, message = 503, "TOKEN_UNAVAILABLE", "The provider could not refresh the token"

    def __init__(self, team_id: int, provider: str, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        super().__init__(team_id, provider, headers=headers)
        self.retry_after = retry_after


def _team_id(team: Any) -> int:
    return int(getattr(team, "id", team))


def _lock(app: Quart, team_id: int, provider: str) -> asyncio.Lock:
    locks: dict[tuple[int, str], asyncio.Lock] = app.extensions.setdefault(LOCKS, {})
    return locks.setdefault((team_id, provider), asyncio.Lock())


def _stale(gw: Gateway, row: OAuthConnection, rejected: str | None) -> bool:
    if rejected is not None and row.access_token_enc:
        current = common.cipher(gw).decrypt(row.access_token_enc)
        if hmac.compare_digest(current.encode(), rejected.encode()):
            return True
    if not row.access_token_enc:
        return True
    return row.expires_at is not None and row.expires_at - REFRESH_AHEAD <= gw.clock.now()


def _usable(gw: Gateway, row: OAuthConnection) -> str:
    if row.status == "needs_reconnect":
        raise ReconnectRequired(row.team_id, row.provider)
    return common.cipher(gw).decrypt(row.access_token_enc or "")


async def get_access_token(
    team: Any, provider: str, *, rejected: str | None = None, app: Quart | None = None
) -> str:
    """A valid access token for ``team``'s connection to ``provider``.

    :param team: a Team or its id.
    :param rejected: the token the provider just answered 401 to: refreshed unless
        another caller already replaced it.
    :raises NotConnected: / :raises ReconnectRequired: / :raises TokenUnavailable:
    """
    gw = common.gateway_of(app)
    tid = _team_id(team)
    row = await OAuthConnection.get_or_none(team_id=tid, provider=provider)
    if row is None:
        raise NotConnected(tid, provider)
    if row.status == "needs_reconnect":
        raise ReconnectRequired(tid, provider)
    if not _stale(gw, row, rejected):
        return _usable(gw, row)
    from gateway.db import is_sqlite

    async with _lock(app or common.gateway_of_app(), tid, provider):
        if is_sqlite(gw.db.url):
            return await _refresh_locked(gw, tid, provider, rejected, None)
        failure: OAuthTokenError | None = None
        async with in_transaction() as conn:
            try:
                return await _refresh_locked(gw, tid, provider, rejected, conn)
            except OAuthTokenError as exc:
                failure = exc  # commit the status change made under the lock, then raise
        raise failure


async def _refresh_locked(
    gw: Gateway, tid: int, provider_name: str, rejected: str | None, conn: Any
) -> str:
    query = OAuthConnection.filter(team_id=tid, provider=provider_name)
    if conn is not None:
        query = query.select_for_update().using_db(conn)
    row = await query.first()
    if row is None:
        raise NotConnected(tid, provider_name)
    if row.status == "needs_reconnect":
        raise ReconnectRequired(tid, provider_name)
    if not _stale(gw, row, rejected):
        return _usable(gw, row)  # someone refreshed while we waited
    provider = common.providers(gw).get(provider_name)
    cipher = common.cipher(gw)
    refresh_token = cipher.decrypt_optional(row.refresh_token_enc)
    now = gw.clock.now()
    if provider is None or not provider.configured or not refresh_token:
        reason = "no refresh token" if provider else "provider not enabled"
        return await _fail(gw, row, conn, ReconnectRequired(tid, provider_name), reason)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    form.update({k: v for k, v in provider.refresh_params.items() if k not in form})
    try:
        async with gw.http_session() as http:  # None outside a serving app
            tokens = await token_request(http, provider, dict(row.options or {}), form, now)
    except TokenEndpointError as exc:
        if exc.needs_reconnect:
            log.warning("refresh token of team %s for %s is dead", tid, provider_name)
            err: OAuthTokenError = ReconnectRequired(tid, provider_name)
            return await _fail(gw, row, conn, err, f"refresh refused: {exc.code}")
        log.warning("refresh for team %s %s failed: %s", tid, provider_name, exc.code)
        still_valid = row.expires_at is None or row.expires_at > now
        if still_valid and rejected is None and row.access_token_enc:
            # Early refresh failed but the current token still works: hand it out.
            await _mark(row, conn, "error", f"refresh failed: {exc.code}", now)
            return cipher.decrypt(row.access_token_enc)
        err = TokenUnavailable(tid, provider_name, exc.retry_after)
        return await _fail(gw, row, conn, err, f"refresh failed: {exc.code}", status="error")
    row.access_token_enc = cipher.encrypt(tokens.access_token)
    if tokens.refresh_token:  # rotated; providers that send none keep the old one valid
        row.refresh_token_enc = cipher.encrypt(tokens.refresh_token)
    row.expires_at = tokens.expires_at
    row.token_type = tokens.token_type
    if tokens.scope is not None:
        row.scopes = common.normalize_scopes(tokens.scope)
    row.refreshed_at = now
    row.status, row.last_error, row.updated_at = "connected", None, now
    _take_account_changes(provider, row, tokens.raw)
    await row.save(using_db=conn)
    return tokens.access_token


def _take_account_changes(provider: Any, row: OAuthConnection, token: Any) -> None:
    """Store what the provider says changed with the new token (an API host that moved),
    in the same write as the token, so no reader sees the new token with the old host."""
    if provider.account_from_token is None:
        return
    try:
        account = provider.account_from_token(token, dict(row.account_data or {}))
    except Exception as exc:  # the refresh itself stands; a rotated token must be kept
        log.warning(
            "%s: reading account changes from a refreshed token failed: %s",
            provider.name,
            type(exc).__name__,
        )
        return
    if account is not None:
        row.account_data = dict(account)


async def _mark(row: OAuthConnection, conn: Any, status: str, error: str, now: datetime) -> None:
    row.status, row.last_error, row.updated_at = status, error[:500], now
    await row.save(using_db=conn, update_fields=["status", "last_error", "updated_at"])


async def _fail(
    gw: Gateway,
    row: OAuthConnection,
    conn: Any,
    error: OAuthTokenError,
    reason: str,
    status: str = "needs_reconnect",
) -> str:
    await _mark(row, conn, status, reason, gw.clock.now())
    raise error
