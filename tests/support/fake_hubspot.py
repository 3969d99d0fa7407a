"""A loopback HubSpot OAuth server (real HTTP on 127.0.0.1) built on
:class:`gateway.testing.FakeOAuthServer`.

What it copies from HubSpot's documented protocol (sources in docs/plugins/hubspot.md);
the CRM API is in :mod:`tests.support.fake_hubspot_crm`:

- ``GET /oauth/authorize`` (consent page), ``POST /oauth/2026-03/token``,
  ``POST /oauth/2026-03/token/introspect`` and ``POST /oauth/2026-03/token/revoke``, all
  form-encoded with ``client_id``/``client_secret`` in the body (Basic auth is refused);
- 30-minute access tokens; refresh tokens do not rotate;
- token responses in snake_case (``hub_id``, ``user_id``, ``scopes`` as a list), or
  camelCase with ``camel_case=True``;
- error bodies with no ``error`` key: v1 ``{"status": "BAD_REFRESH_TOKEN", ...}`` or, with
  ``error_style="new"``, ``{"category", "correlationId", "message", "subCategory"}``;
- revocation deletes the refresh token only (access tokens keep working until expiry).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from gateway.testing import FakeOAuthServer, Grant
from tests.support.fake_hubspot_crm import HubSpotCrmApi

VERSION = "2026-03"

# RFC 6749 error -> (v1 status, new-style subCategory, message)
_V1 = {
    "invalid_grant": "BAD_REFRESH_TOKEN",
    "invalid_client": "BAD_CLIENT_ID",
    "unsupported_grant_type": "MISSING_OR_UNKNOWN_GRANT_TYPE",
}
_MESSAGES = {
    "BAD_REFRESH_TOKEN": "missing or invalid refresh token",
    "BAD_AUTH_CODE": "missing or unknown auth code",
    "BAD_CLIENT_ID": "missing or invalid client_id",
}


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


class FakeHubSpot(HubSpotCrmApi, FakeOAuthServer):
    def __init__(
        self,
        *,
        camel_case: bool = False,
        error_style: str = "v1",  # "v1" | "new"
        hub_id: int = 24_681_357,
        user: str = "rep@acme.example",
        hub_domain: str = "acme.hubspot.com",
        **kw: Any,
    ) -> None:
        kw.setdefault("client_id", "hs-client-id")
        kw.setdefault("client_secret", "hs-client-secret")
        super().__init__(
            client_auth="client_secret_post",
            access_ttl=1800,
            rotate_refresh_tokens=False,
            account={"hub_id": hub_id, "user": user, "hub_domain": hub_domain, "user_id": 7001},
            paths={
                "authorize": "/oauth/authorize",
                "token": f"/oauth/{VERSION}/token",
                "revoke": f"/oauth/{VERSION}/token/revoke",
                "introspect": f"/oauth/{VERSION}/token/introspect",
            },
            **kw,
        )
        self.camel_case = camel_case
        self.error_style = error_style
        self.introspections: list[dict[str, str]] = []  # forms, client secret removed
        self.revocations: list[dict[str, str]] = []
        self.init_crm()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.paths["introspect"], self.introspect)
        self.add_crm_routes(app)

    # --- HubSpot's shapes ------------------------------------------------------------

    def hubspot_error(self, status: int, marker: str, message: str) -> web.Response:
        if self.error_style == "new":
            body: dict[str, Any] = {
                "status": "error",
                "message": message,
                "correlationId": str(uuid.uuid4()),
                "category": "VALIDATION_ERROR",
                "subCategory": "INVALID_TOKEN" if "TOKEN" in marker else marker,
            }
        else:
            body = {"status": marker, "message": message}
        return web.json_response(body, status=status)

    def error_response(self, status: int, error: str, description: str = "") -> web.Response:
        marker = _V1.get(error, "BAD_REQUEST")
        if error == "invalid_grant" and "code" in description:
            marker = "BAD_AUTH_CODE"
        return self.hubspot_error(status, marker, _MESSAGES.get(marker, description or error))

    def token_body(self, grant: Grant, access: str, refresh: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "hub_id": grant.account["hub_id"],
            "user_id": grant.account["user_id"],
            "scopes": grant.scope.split(),
            "token_use": "access_token",
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return {_camel(k): v for k, v in body.items()} if self.camel_case else body

    # --- introspect / revoke -------------------------------------------------------------

    async def _form(self, request: web.Request) -> dict[str, str]:
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}

    def _creds_ok(self, form: dict[str, str]) -> bool:
        return (
            form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
        )

    async def introspect(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        self.introspections.append({k: v for k, v in form.items() if k != "client_secret"})
        if not self._creds_ok(form):
            return self.hubspot_error(400, "BAD_CLIENT_ID", "missing or invalid client_id")
        token = form.get("token", "")
        grant = self.access.get(token) or self.grants.get(token)
        if grant is None:
            return web.json_response({"active": False})
        kind = "access_token" if token in self.access else "refresh_token"
        body = {
            "active": True,
            "app_id": 4242,
            "client_id": self.client_id,
            "hub_id": grant.account["hub_id"],
            "hub_domain": grant.account["hub_domain"],
            "user": grant.account["user"],
            "user_id": grant.account["user_id"],
            "scopes": grant.scope.split(),
            "token": token,
            "token_type": "bearer",
            "token_use": kind,
        }
        if kind == "access_token":
            body["expires_in"] = self.access_ttl
        return web.json_response(body)

    async def revoke(self, request: web.Request) -> web.Response:
        if self.revoke_failure is not None:
            f = self.revoke_failure
            return web.json_response(f.body, status=f.status, headers=f.headers)
        form = await self._form(request)
        self.revocations.append({k: v for k, v in form.items() if k != "client_secret"})
        if not self._creds_ok(form):
            return self.hubspot_error(400, "BAD_CLIENT_ID", "missing or invalid client_id")
        token = form.get("token", "")
        grant = self.grants.pop(token, None)
        if grant is None:
            return self.hubspot_error(400, "BAD_REFRESH_TOKEN", _MESSAGES["BAD_REFRESH_TOKEN"])
        self.revoked.append(token)
        return web.Response(status=204)


def plugin_settings(server: FakeHubSpot, **extra: Any) -> dict[str, Any]:
    """``[plugins.hubspot]`` pointing every base URL at ``server``."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "auth_base_url": server.url,
        "api_base_url": server.url,
        **extra,
    }
