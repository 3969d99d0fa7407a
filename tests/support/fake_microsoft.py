"""A loopback Microsoft identity platform (v2) + Graph (real HTTP on 127.0.0.1) built on
:class:`tests.support.oauth_server.FakeOAuthServer`.

What it copies from Microsoft's documented protocol (../shared/providers.md §4):

- ``/{tenant}/oauth2/v2.0/authorize`` and ``/{tenant}/oauth2/v2.0/token`` for one tenant
  segment (``organizations`` by default); client in the form body;
- a refresh token only when ``offline_access`` was requested; refresh tokens rotate on
  every use (this fake also retires the old one, which is stricter than Microsoft and
  catches a client that keeps using it);
- an ID token carrying ``tid``/``oid`` (unsigned here: the client must not depend on it
  for anything but labels);
- errors ``{"error", "error_description": "AADSTS...", "error_codes": [...],
  "timestamp", "trace_id", "correlation_id"}``;
- Graph ``GET /v1.0/me`` (bearer) -> ``id``, ``userPrincipalName``, ``mail``,
  ``displayName``; no revocation endpoint at all.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import web

from tests.support.oauth_server import FakeOAuthServer, Grant

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
USER_ID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"

# RFC 6749 error -> (AADSTS code, description) as Entra ID words them.
AADSTS = {
    "invalid_grant": (
        70008,
        "The provided authorization code or refresh token has expired due to inactivity.",
    ),
    "invalid_client": (7000215, "Invalid client secret provided."),
    "invalid_request": (900144, "The request body must contain the following parameter: 'scope'."),
    "interaction_required": (
        50076,
        "Due to a configuration change made by your administrator, "
        "you must use multi-factor authentication.",
    ),
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class FakeMicrosoft(FakeOAuthServer):
    def __init__(self, *, tenant: str = "organizations", **kw: Any) -> None:
        kw.setdefault("client_id", "6731de76-14a6-49ae-97bc-6eba6914391e")
        kw.setdefault("client_secret", "ms~client~secret")
        base = f"/{tenant}/oauth2/v2.0"
        super().__init__(
            client_auth="any",
            access_ttl=4599,  # Entra hands out 60-90 minute tokens
            rotate_refresh_tokens=True,
            revocation=False,
            account={"oid": USER_ID, "tid": TENANT_ID},
            paths={
                "authorize": f"{base}/authorize",
                "token": f"{base}/token",
                "userinfo": "/oidc/userinfo",
                "resource": "/v1.0/me/joinedTeams",
            },
            **kw,
        )
        self.tenant = tenant
        self.next_error: str | None = None  # an RFC error for the next refresh grant

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1.0/me", self.me)

    def error_response(self, status: int, error: str, description: str = "") -> web.Response:
        code, text = AADSTS.get(error, (90000, description or error))
        trace = str(uuid.uuid4())
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace}",
            "error_codes": [code],
            "timestamp": "2026-11-29 02:00:00Z",
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        }
        return web.json_response(body, status=status)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") == "refresh_token":
            if self.next_error is not None:
                error, self.next_error = self.next_error, None
                self.refresh_calls += 1
                return self.error_response(400, error)
            # The v2 endpoint wants the scopes again on a refresh, a subset of the grant's.
            grant = self.grants.get(str(form.get("refresh_token", "")))
            wanted = str(form.get("scope", "")).split()
            if grant is not None and (not wanted or not set(wanted) <= set(grant.scope.split())):
                self.refresh_calls += 1
                return self.error_response(400, "invalid_request")
        return await super().token(request)

    def token_body(self, grant: Grant, access: str, refresh: str | None) -> dict[str, Any]:
        scopes = grant.scope.split()
        if "offline_access" not in scopes:
            refresh = None  # Microsoft only issues refresh tokens for offline_access
        body = super().token_body(grant, access, refresh)
        body["ext_expires_in"] = self.access_ttl
        # Microsoft answers the resource scopes granted, without the OIDC ones.
        body["scope"] = " ".join(
            s for s in scopes if s not in {"openid", "profile", "offline_access"}
        )
        if "openid" in scopes:
            claims = {"tid": TENANT_ID, "oid": USER_ID, "aud": self.client_id, "ver": "2.0"}
            body["id_token"] = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.sig"
        return body

    async def me(self, request: web.Request) -> web.Response:
        if self.bearer_grant(request) is None:
            return web.json_response(
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token has expired or is not yet valid.",
                    }
                },
                status=401,
            )
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                "id": USER_ID,
                "displayName": "Ada Rep",
                "userPrincipalName": "ada@acme.onmicrosoft.com",
                "mail": "ada@acme.example",
            }
        )


def plugin_settings(server: FakeMicrosoft, **extra: Any) -> dict[str, Any]:
    """``[plugins.microsoft_teams]`` with login and Graph pointing at ``server``."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "tenant": server.tenant,
        "login_base_url": server.url,
        "graph_base_url": server.url,
        **extra,
    }
