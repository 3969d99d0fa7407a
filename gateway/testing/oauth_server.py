"""A loopback OAuth 2.0 provider for tests: real HTTP on 127.0.0.1, port 0.

It follows RFC 6749 (authorization code + refresh token grants), RFC 7636 (S256 PKCE,
verified), RFC 7009 (revocation) and serves an identity endpoint, so the gateway's engine
is driven over the wire exactly as with a real provider. Quirks are constructor options,
and error bodies come from overridable methods, so a provider-specific fake is a small
subclass::

    server = FakeOAuthServer(access_ttl=None, rotate_refresh_tokens=True)
    await server.start()
    ...  # point the plugin's base URLs at server.url
    await server.stop()

Endpoints (paths configurable): ``GET /authorize`` (auto-consents: 302 back with a code,
or with ``error=access_denied`` when ``deny=True``), ``POST /token``, ``POST /revoke``,
``GET /userinfo`` (bearer), ``GET /api/ping`` (a protected resource: 200 or 401).

Counters for assertions: ``refresh_calls``, ``code_calls``, ``revoked`` (tokens),
``token_requests`` (form dicts, client secret removed).

Gateway-side helpers are in :mod:`gateway.testing.oauth`: :func:`seed_admin` (a team, an
admin user and an API token), :func:`run_connect` which walks connect -> authorize ->
callback for a test client, and :func:`provider_plugin` (a plain RFC 6749 provider
pointed at a server).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.testing.loopback import serve


@dataclass
class Grant:
    """One authorization: the account it is for and its live tokens."""

    account: dict[str, Any]
    scope: str
    refresh_token: str | None = None
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class CannedResponse:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


class FakeOAuthServer:
    """See the module docstring. Every option can also be changed between requests."""

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",
        client_auth: str = "any",  # "client_secret_post" | "client_secret_basic" | "any"
        access_ttl: int | None = 3600,  # None: the token response has no expires_in
        rotate_refresh_tokens: bool = False,
        issue_refresh_token: bool = True,
        require_pkce: bool = True,
        scope_in_response: bool = True,
        scope_separator: str = " ",
        revocation: bool = True,
        account: dict[str, Any] | None = None,
        deny: bool = False,
        refresh_delay: float = 0.0,  # widens race windows in concurrency tests
        paths: dict[str, str] | None = None,
    ) -> None:
        self.client_id, self.client_secret, self.client_auth = client_id, client_secret, client_auth
        self.access_ttl = access_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.issue_refresh_token = issue_refresh_token
        self.require_pkce = require_pkce
        self.scope_in_response = scope_in_response
        self.scope_separator = scope_separator
        self.revocation = revocation
        self.account = account or {"sub": "user-1", "email": "owner@example.com"}
        self.deny = deny
        self.refresh_delay = refresh_delay
        self.paths = {
            "authorize": "/authorize",
            "token": "/token",
            "revoke": "/revoke",
            "userinfo": "/userinfo",
            "resource": "/api/ping",
            **(paths or {}),
        }
        self.codes: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, Grant] = {}  # by refresh token
        self.access: dict[str, Grant] = {}  # by access token
        self.refresh_calls = 0
        self.code_calls = 0
        self.revoked: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        # Answers returned by the token endpoint before any real processing, in order.
        self.canned_token_responses: list[CannedResponse] = []
        self.revoke_failure: CannedResponse | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.paths["authorize"], self.authorize)
        app.router.add_post(self.paths["token"], self.token)
        if self.revocation:
            app.router.add_post(self.paths["revoke"], self.revoke)
        app.router.add_get(self.paths["userinfo"], self.userinfo)
        app.router.add_get(self.paths["resource"], self.resource)
        self.add_routes(app)
        return app

    def add_routes(self, app: web.Application) -> None:
        """Subclasses add provider API routes here."""

    async def start(self) -> str:
        self._runner, port = await serve(self.make_app())
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOAuthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def endpoint(self, which: str) -> str:
        return self.url + self.paths[which]

    # --- provider behaviour a subclass may change ------------------------------------------

    def error_response(self, status: int, error: str, description: str = "") -> web.Response:
        """The provider's error body (RFC 6749 5.2 by default)."""
        body = {"error": error}
        if description:
            body["error_description"] = description
        return web.json_response(body, status=status)

    def token_body(self, grant: Grant, access: str, refresh: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        if self.access_ttl is not None:
            body["expires_in"] = self.access_ttl
        if refresh is not None:
            body["refresh_token"] = refresh
        if self.scope_in_response:
            body["scope"] = grant.scope
        return body

    def identity_body(self, grant: Grant) -> dict[str, Any]:
        return dict(grant.account)

    # --- test controls ----------------------------------------------------------------

    def revoke_all_refresh_tokens(self) -> None:
        """As if the user removed the app's access at the provider."""
        for grant in list(self.grants.values()):
            self._forget(grant)

    def expire_access_tokens(self) -> None:
        """Every access token is rejected from now on (the resource answers 401)."""
        self.access.clear()
        for grant in self.grants.values():
            grant.access_tokens.clear()

    def fail_next_token_request(self, status: int, body: Any, headers: Any = None) -> None:
        self.canned_token_responses.append(CannedResponse(status, body, dict(headers or {})))

    def live_refresh_tokens(self) -> list[str]:
        return list(self.grants)

    # --- handlers ---------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.authorize_requests.append(q)
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect_uri:
            return web.Response(status=400, text="invalid client or redirect_uri")
        if self.deny:
            loc = _add_query(redirect_uri, {"error": "access_denied", "state": q.get("state", "")})
            raise web.HTTPFound(loc)
        if self.require_pkce and q.get("code_challenge_method") != "S256":
            loc = _add_query(
                redirect_uri, {"error": "invalid_request", "state": q.get("state", "")}
            )
            raise web.HTTPFound(loc)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "redirect_uri": redirect_uri,
            "challenge": q.get("code_challenge"),
            "scope": q.get("scope", ""),
        }
        raise web.HTTPFound(_add_query(redirect_uri, {"code": code, "state": q.get("state", "")}))

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic ") and self.client_auth in ("any", "client_secret_basic"):
            try:
                raw = base64.b64decode(header[6:]).decode()
            except ValueError:
                return False
            cid, _, secret = raw.partition(":")
            return cid == self.client_id and secret == self.client_secret
        if "client_secret" in form and self.client_auth in ("any", "client_secret_post"):
            return (
                form.get("client_id") == self.client_id
                and form.get("client_secret") == self.client_secret
            )
        return False

    async def token(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        kind = form.get("grant_type")
        if kind == "refresh_token":
            self.refresh_calls += 1
            if self.refresh_delay:
                await asyncio.sleep(self.refresh_delay)
        elif kind == "authorization_code":
            self.code_calls += 1
        if self.canned_token_responses:
            canned = self.canned_token_responses.pop(0)
            if isinstance(canned.body, dict):
                return web.json_response(canned.body, status=canned.status, headers=canned.headers)
            return web.Response(text=canned.body, status=canned.status, headers=canned.headers)
        if not self._client_ok(request, form):
            return self.error_response(401, "invalid_client", "client authentication failed")
        if kind == "authorization_code":
            return self._code_grant(form)
        if kind == "refresh_token":
            return self._refresh_grant(form)
        return self.error_response(400, "unsupported_grant_type")

    def _code_grant(self, form: dict[str, str]) -> web.Response:
        entry = self.codes.pop(form.get("code", ""), None)
        if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
            return self.error_response(400, "invalid_grant", "bad code or redirect_uri")
        if entry["challenge"] is not None or self.require_pkce:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or expected != entry["challenge"]:
                return self.error_response(400, "invalid_grant", "PKCE verification failed")
        grant = Grant(account=dict(self.account), scope=entry["scope"])
        refresh = self._new_refresh(grant) if self.issue_refresh_token else None
        return web.json_response(self.token_body(grant, self._new_access(grant), refresh))

    def _refresh_grant(self, form: dict[str, str]) -> web.Response:
        grant = self.grants.get(form.get("refresh_token", ""))
        if grant is None:
            return self.error_response(400, "invalid_grant", "Token has been expired or revoked.")
        refresh = None
        if self.rotate_refresh_tokens:
            del self.grants[grant.refresh_token or ""]
            refresh = self._new_refresh(grant)
        return web.json_response(self.token_body(grant, self._new_access(grant), refresh))

    def _new_access(self, grant: Grant) -> str:
        token = "at-" + secrets.token_urlsafe(16)
        grant.access_tokens.add(token)
        self.access[token] = grant
        return token

    def _new_refresh(self, grant: Grant) -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        grant.refresh_token = token
        self.grants[token] = grant
        return token

    def _forget(self, grant: Grant) -> None:
        self.grants.pop(grant.refresh_token or "", None)
        for at in grant.access_tokens:
            self.access.pop(at, None)
        grant.access_tokens.clear()

    async def revoke(self, request: web.Request) -> web.Response:
        if self.revoke_failure is not None:
            f = self.revoke_failure
            return web.json_response(f.body, status=f.status, headers=f.headers)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        token = form.get("token", "")
        self.revoked.append(token)
        grant = self.grants.get(token) or self.access.get(token)
        if grant is not None:
            self._forget(grant)
        return web.Response(status=200)

    def bearer_grant(self, request: web.Request) -> Grant | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return self.access.get(header[7:])

    async def userinfo(self, request: web.Request) -> web.Response:
        grant = self.bearer_grant(request)
        if grant is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(self.identity_body(grant))

    async def resource(self, request: web.Request) -> web.Response:
        grant = self.bearer_grant(request)
        if grant is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"ok": True, "account": grant.account.get("sub")})


def _add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


__all__ = ["CannedResponse", "FakeOAuthServer", "Grant"]
