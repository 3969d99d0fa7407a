"""HubSpot over OAuth 2.0: how a team connects its portal (the engine's provider).

Quirks handled here (see docs/plugins/hubspot.md, with HubSpot's sources):

- the date-versioned token API (``/oauth/2026-03/token``, ``.../introspect``,
  ``.../revoke``) takes every parameter, client credentials included, in the form body;
- access tokens live 30 minutes: the engine follows ``expires_in``;
- error bodies carry no RFC 6749 ``error`` key: v1 style ``{"status": "BAD_REFRESH_TOKEN",
  ...}`` or new style ``{"category": ..., "subCategory": "INVALID_TOKEN", ...}``;
- responses may be rendered in camelCase (``accessToken``, ``expiresIn``, ``hubId``);
- "who connected" is the token introspection endpoint (hub id, hub domain, user e-mail);
- revocation deletes the refresh token only; issued access tokens run out by themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway.oauth import (
    AccountInfo,
    IdentityRequest,
    OAuthProvider,
    RevocationFailed,
    RevokeRequest,
)
from plugins.hubspot.settings import NAME, HubSpotSettings

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

# Error markers HubSpot uses for a refresh token or code that will never work again.
DEAD_GRANT = {
    "BAD_REFRESH_TOKEN",
    "BAD_AUTH_CODE",
    "INVALID_TOKEN",
    "INVALID_REFRESH_TOKEN",
    "EXPIRED_REFRESH_TOKEN",
    "INVALID_GRANT",
}
BAD_CLIENT = {"BAD_CLIENT_ID", "BAD_CLIENT_SECRET", "INVALID_CLIENT"}


def _camel_to_snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def parse_token(body: Mapping[str, Any]) -> dict[str, Any]:
    """Token and introspection responses in RFC 6749 names, whichever casing HubSpot
    answered in; ``scopes`` (a list) becomes the space-separated ``scope``."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        out.setdefault(_camel_to_snake(key), value)
    scopes = out.get("scopes")
    if "scope" not in out and isinstance(scopes, list):
        out["scope"] = " ".join(str(s) for s in scopes)
    return out


def token_error(status: int, body: Mapping[str, Any]) -> str | None:
    """Map HubSpot's error bodies onto OAuth error codes; ``None`` = let the engine decide
    (5xx and 429 stay transient there)."""
    if status < 400 or status >= 500 or status == 429:
        return None
    if isinstance(body.get("error"), str):
        return str(body["error"])
    markers = {str(body.get(k, "")).upper() for k in ("status", "subCategory", "sub_category")}
    for detail in body.get("errors") or []:
        if isinstance(detail, Mapping):
            markers.add(str(detail.get("subCategory", "")).upper())
    if markers & DEAD_GRANT:
        return "invalid_grant"
    if markers & BAD_CLIENT:
        return "invalid_client"
    return None


def _error_marker(body: Any) -> str:
    if not isinstance(body, Mapping):
        return "unreadable body"
    return str(body.get("subCategory") or body.get("status") or body.get("category") or "error")


class HubSpot:
    """The endpoints that need the client credentials (introspect, revoke)."""

    def __init__(self, settings: HubSpotSettings) -> None:
        self.settings = settings

    def _client(self) -> dict[str, str]:
        secret = self.settings.client_secret
        return {
            "client_id": self.settings.client_id or "",
            "client_secret": secret.get_secret_value() if secret else "",
        }

    async def fetch_identity(self, req: IdentityRequest) -> AccountInfo:
        """The portal (hub) and the installing user, from token introspection."""
        token = parse_token(req.token)
        form = {
            **self._client(),
            "token": str(token["access_token"]),
            "token_type_hint": "access_token",
        }
        url = f"{self.settings.oauth_base}/token/introspect"
        async with req.http.post(url, data=form, timeout=TIMEOUT) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, Mapping):
                raise RuntimeError(f"introspection failed: HTTP {resp.status}")
        info = parse_token(body)
        if info.get("active") is False or info.get("hub_id") is None:
            raise RuntimeError("introspection: token not active")
        hub_id = str(info["hub_id"])
        user = str(info.get("user") or "")
        domain = str(info.get("hub_domain") or "")
        label = " / ".join(p for p in (user, domain or f"hub {hub_id}") if p)
        data = {"hub_id": hub_id, "hub_domain": domain, "user": user}
        if info.get("user_id") is not None:
            data["user_id"] = str(info["user_id"])
        return AccountInfo(account_id=hub_id, label=label, data=data)

    async def revoke(self, req: RevokeRequest) -> None:
        """Delete the refresh token (HubSpot has nothing to revoke an access token with)."""
        if not req.refresh_token:
            return
        form = {
            **self._client(),
            "token": req.refresh_token,
            "token_type_hint": "refresh_token",
        }
        url = f"{self.settings.oauth_base}/token/revoke"
        try:
            async with req.http.post(url, data=form, timeout=TIMEOUT) as resp:
                body = await resp.json(content_type=None) if resp.status >= 400 else None
                status = resp.status
        except ValueError:
            raise RevocationFailed("HTTP error with an unreadable body") from None
        except TimeoutError:
            raise RevocationFailed("timeout") from None
        if status < 400:
            return
        # Already dead (revoked, app uninstalled): the goal of the call is reached.
        if status in (400, 404) and token_error(status, body or {}) == "invalid_grant":
            return
        raise RevocationFailed(f"HTTP {status} ({_error_marker(body)})")


def build(settings: HubSpotSettings) -> OAuthProvider:
    hub = HubSpot(settings)
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    extra: dict[str, str] = {}
    if settings.optional_scopes:
        extra["optional_scope"] = " ".join(settings.optional_scopes)
    return OAuthProvider(
        name=NAME,
        display_name="HubSpot",
        client_id=settings.client_id,
        client_secret=secret,
        authorize_url=f"{settings.auth_base_url}/oauth/authorize",
        token_url=f"{settings.oauth_base}/token",
        scopes=tuple(settings.scopes),
        extra_authorize_params=extra,
        client_auth_method="client_secret_post",
        pkce=True,
        fetch_identity=hub.fetch_identity,
        revoke=hub.revoke,
        token_error=token_error,
        parse_token=parse_token,
    )
