"""disconnect (revoke at the provider, then forget) and the status listing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.oauth import common
from gateway.oauth.models import OAuthConnection
from gateway.oauth.provider import OAuthProvider, RevokeRequest
from gateway.responses import iso

if TYPE_CHECKING:  # pragma: no cover
    from gateway.app import Gateway

log = logging.getLogger("gateway.oauth")

REVOKE_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


class RevocationFailed(Exception):
    """Raised by a plugin's ``revoke`` (or by the standard one) with a short reason."""


async def _standard_revoke(url: str, req: RevokeRequest) -> None:
    # RFC 7009: revoking the refresh token also ends its access tokens at most providers.
    token, hint = (
        (req.refresh_token, "refresh_token")
        if req.refresh_token
        else (req.access_token, "access_token")
    )
    if not token:
        return
    data = {
        "token": token,
        "token_type_hint": hint,
        "client_id": req.client_id,
        "client_secret": req.client_secret,
    }
    async with req.http.post(url, data=data, timeout=REVOKE_TIMEOUT) as resp:
        await resp.read()
        # RFC 7009 2.2: an already invalid token is answered 200; 400 invalid_token too.
        if resp.status == 400:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = {}
            if not isinstance(body, dict) or body.get("error") != "invalid_token":
                raise RevocationFailed("HTTP 400")
        elif resp.status > 400:
            raise RevocationFailed(f"HTTP {resp.status}")


async def _revoke(
    gw: Gateway, provider: OAuthProvider, row: OAuthConnection, http: aiohttp.ClientSession
) -> dict[str, Any]:
    url = provider.endpoint("revocation_url", dict(row.options or {}))
    if provider.revoke is None and not url:
        return {"revoked": None}  # the provider has no revocation endpoint
    cipher = common.cipher(gw)
    req = RevokeRequest(
        access_token=cipher.decrypt_optional(row.access_token_enc),
        refresh_token=cipher.decrypt_optional(row.refresh_token_enc),
        options=dict(row.options or {}),
        account=dict(row.account_data or {}),
        http=http,
        client_id=provider.client_id or "",
        client_secret=provider.client_secret or "",
    )
    try:
        if provider.revoke is not None:
            await provider.revoke(req)
        else:
            await _standard_revoke(url or "", req)
    except RevocationFailed as exc:
        reason = str(exc)[:200]
    except (TimeoutError, aiohttp.ClientError) as exc:
        reason = f"network error ({type(exc).__name__})"
    else:
        return {"revoked": True}
    log.warning("revocation at %s failed for team %s: %s", provider.name, row.team_id, reason)
    return {"revoked": False, "revocation_error": reason}


async def disconnect(gw: Gateway, provider: OAuthProvider, team_id: int) -> dict[str, Any]:
    """Revoke where possible, then delete the connection. Idempotent: a second call
    answers ``not_connected`` with nothing to revoke."""
    row = await OAuthConnection.get_or_none(team_id=team_id, provider=provider.name)
    if row is None:
        return {"provider": provider.name, "status": "not_connected", "revoked": None}
    result: dict[str, Any] = {"revoked": None}
    if provider.configured:
        async with gw.http_session() as http:  # None outside a serving app
            result = await _revoke(gw, provider, row, http)
    await OAuthConnection.filter(id=row.id).delete()
    log.info("team %s disconnected %s", team_id, provider.name)
    return {"provider": provider.name, "status": "not_connected", **result}


def connection_json(provider: OAuthProvider, row: OAuthConnection | None) -> dict[str, Any]:
    """One status entry. Never a token."""
    base: dict[str, Any] = {
        "provider": provider.name,
        "display_name": provider.display_name,
        "configured": provider.configured,
    }
    if row is None:
        return {
            **base,
            "status": "not_connected",
            "account": None,
            "scopes": [],
            "connected_at": None,
            "connected_by": None,
            "access_token_expires_at": None,
            "last_error": None,
        }
    by = row.connected_by  # prefetched by the caller
    return {
        **base,
        "status": row.status,
        "account": {"id": row.account_id, "label": row.account_label},
        "scopes": row.scopes.split() if row.scopes else [],
        "connected_at": iso(row.connected_at),
        "connected_by": {"id": by.id, "email": by.email} if by is not None else None,
        "access_token_expires_at": iso(row.expires_at),
        "refreshed_at": iso(row.refreshed_at),
        "last_error": row.last_error,
    }


async def status(gw: Gateway, team_id: int) -> dict[str, Any]:
    rows = {
        r.provider: r
        for r in await OAuthConnection.filter(team_id=team_id).prefetch_related("connected_by")
    }
    return {
        "team_id": team_id,
        "integrations": [
            connection_json(p, rows.get(name)) for name, p in sorted(common.providers(gw).items())
        ],
    }
