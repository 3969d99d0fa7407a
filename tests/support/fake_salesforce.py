"""A loopback Salesforce login host + org (real HTTP on 127.0.0.1) built on
:class:`gateway.testing.FakeOAuthServer`.

What it copies from Salesforce's documented protocol (sources in
docs/plugins/salesforce.md); the org's REST API (search, query, sobjects) is in
:mod:`tests.support.fake_salesforce_crm`:

- ``/services/oauth2/authorize``, ``/services/oauth2/token`` (client in the form body),
  ``/services/oauth2/revoke`` (form ``token=``; revoking a refresh token also ends its
  access tokens);
- token responses (code and refresh grants) with ``instance_url`` (``instance_url``
  attribute, default this server), ``id`` (the identity URL), ``issued_at`` (ms),
  ``signature`` (base64 HMAC-SHA256 of ``id`` + ``issued_at`` under the client secret)
  and no ``expires_in``;
- ``GET /id/{org}/{user}`` (bearer) -> ``user_id``, ``organization_id``, ``username``, ...;
- the org's REST API under ``/services/data/v62.0/``: an unknown or ended session is
  answered 401 ``[{"message": "Session expired or invalid", "errorCode":
  "INVALID_SESSION_ID"}]``;
- refresh failures: 400 ``{"error": "invalid_grant", "error_description": "expired
  access/refresh token"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from aiohttp import web

from gateway.testing import FakeOAuthServer, Grant
from tests.support.fake_salesforce_crm import SESSION_EXPIRED, SalesforceOrgApi

ORG_ID = "00D5g000004ABCDEAA"
USER_ID = "0055g00000XYZ12AAA"


class FakeSalesforce(SalesforceOrgApi, FakeOAuthServer):
    def __init__(self, *, signing_secret: str | None = None, **kw: Any) -> None:
        kw.setdefault("client_id", "3MVG9sf-consumer-key")
        kw.setdefault("client_secret", "sf-consumer-secret")
        super().__init__(
            client_auth="client_secret_post",
            access_ttl=None,  # Salesforce never says when a session ends
            rotate_refresh_tokens=False,
            account={"organization_id": ORG_ID, "user_id": USER_ID},
            paths={
                "authorize": "/services/oauth2/authorize",
                "token": "/services/oauth2/token",
                "revoke": "/services/oauth2/revoke",
                "userinfo": "/services/oauth2/userinfo",
                "resource": "/services/data/v62.0/limits",
            },
            **kw,
        )
        # The secret the token response is signed with (a wrong one simulates tampering).
        self.signing_secret = signing_secret
        self.issued_at = 1_764_374_400_000
        self.api_calls: list[str] = []
        self.instance_url: str | None = None  # what token responses name; None: this server
        self.init_org()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/id/{org}/{user}", self.identity)
        self.add_org_routes(app)

    async def stop(self) -> None:
        await self.stop_instances()
        await super().stop()

    def identity_url(self) -> str:
        return f"{self.url}/id/{ORG_ID}/{USER_ID}"

    def error_response(self, status: int, error: str, description: str = "") -> web.Response:
        if error == "invalid_grant" and "PKCE" not in description and "code" not in description:
            description = "expired access/refresh token"
        return super().error_response(
            400 if error == "invalid_grant" else status, error, description
        )

    def token_body(self, grant: Grant, access: str, refresh: str | None) -> dict[str, Any]:
        self.issued_at += 1000
        ident, issued = self.identity_url(), str(self.issued_at)
        key = (self.signing_secret or self.client_secret).encode()
        signature = base64.b64encode(
            hmac.new(key, f"{ident}{issued}".encode(), hashlib.sha256).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": access,
            "instance_url": self.instance_url or self.url,
            "id": ident,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": signature,
            "scope": grant.scope,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body

    async def identity(self, request: web.Request) -> web.Response:
        grant = self.bearer_grant(request)
        if grant is None:
            return web.Response(status=403, text="Bad_OAuth_Token")
        return web.json_response(
            {
                "id": self.identity_url(),
                "asserted_user": True,
                "user_id": USER_ID,
                "organization_id": ORG_ID,
                "username": "rep@acme.example.sandbox",
                "nick_name": "rep",
                "display_name": "Ada Rep",
                "email": "rep@acme.example",
                "urls": {"rest": f"{self.url}/services/data/v{{version}}/"},
            }
        )

    async def resource(self, request: web.Request) -> web.Response:
        self.api_calls.append(request.path)
        if self.bearer_grant(request) is None:
            return web.json_response(SESSION_EXPIRED, status=401)
        return web.json_response({"DailyApiRequests": {"Max": 15000, "Remaining": 14998}})


def plugin_settings(server: FakeSalesforce, **extra: Any) -> dict[str, Any]:
    """``[plugins.salesforce]`` with the sandbox login host pointing at ``server`` (the
    production host stays the real one, so a test can tell which host was chosen)."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "sandbox_base_url": server.url,
        **extra,
    }
