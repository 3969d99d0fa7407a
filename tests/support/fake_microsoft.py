"""A loopback Microsoft identity platform (v2) + Graph (real HTTP on 127.0.0.1) built on
:class:`gateway.testing.FakeOAuthServer`.

What it copies from Microsoft's documented protocol
(https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow,
https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens,
https://learn.microsoft.com/en-us/graph/api/user-get):

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
  ``displayName``; no revocation endpoint at all;
- Graph's channel messages (post and list: :mod:`tests.support.fake_teams_channels`).

:class:`FakeWorkflows` is a Teams Workflows webhook ("post to a channel when a webhook
request is received"): a Logic Apps request trigger URL with its ``sig``.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import web

from gateway.testing import FakeOAuthServer, Grant, serve
from tests.support.fake_teams_channels import (
    ADAPTIVE,
    CHANNEL_ID,
    TEAM_GROUP_ID,
    TeamsChannelsApi,
    graph_error,
)

__all__ = [
    "CHANNEL_ID",
    "TEAM_GROUP_ID",
    "TENANT_ID",
    "USER_ID",
    "FakeMicrosoft",
    "FakeWorkflows",
    "plugin_settings",
]

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


class FakeMicrosoft(TeamsChannelsApi, FakeOAuthServer):
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
        self.init_channels()
        self.next_error: str | None = None  # an RFC error for the next refresh grant

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1.0/me", self.me)
        self.add_channel_routes(app)

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
    """``[plugins.microsoft_teams]`` with login and Graph pointing at ``server`` (and
    Workflows webhooks allowed on loopback)."""
    return {
        "webhook_hosts": ["127.0.0.1"],
        "webhook_allow_http": True,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "tenant": server.tenant,
        "login_base_url": server.url,
        "graph_base_url": server.url,
        **extra,
    }


# Logic Apps error codes by status (the body is {"error": {"code", "message"}} too).
WORKFLOW_ERRORS = {
    403: "WorkflowTriggerIsNotEnabled",
    404: "WorkflowNotFound",
    429: "TooManyRequests",
}


class FakeWorkflows:
    """A Teams Workflows webhook: ``POST /workflows/{id}/triggers/manual/paths/invoke
    ?api-version=...&sig=...`` as a Logic Apps request trigger answers it
    (https://learn.microsoft.com/en-us/azure/connectors/connectors-native-reqres): 202
    with ``x-ms-workflow-run-id`` when the body is the message envelope of an Adaptive
    Card, 401 ``DirectApiAuthorizationRequired`` for a wrong ``sig``, 400 for a body the
    flow cannot post, 429 with ``Retry-After`` when throttled.

    Controls: ``fail_next(status, headers)``; ``fail_after_accept`` accepts the next card
    and answers 504. ``posts``: every request's JSON body; ``cards``: what reached the
    channel."""

    def __init__(self) -> None:
        self.workflow_id = uuid.uuid4().hex
        self.sig = "sIg" + uuid.uuid4().hex
        self.posts: list[Any] = []
        self.cards: list[dict[str, Any]] = []
        self.canned: list[tuple[int, dict[str, str]]] = []
        self.fail_after_accept = False
        self._runner: web.AppRunner | None = None
        self.base = ""

    @property
    def url(self) -> str:
        return (
            f"{self.base}/workflows/{self.workflow_id}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"
        )

    async def __aenter__(self) -> FakeWorkflows:
        app = web.Application()
        app.router.add_post("/workflows/{wid}/triggers/manual/paths/invoke", self.invoke)
        self._runner, port = await serve(app)
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, headers: Any = None) -> None:
        self.canned.append((status, dict(headers or {})))

    async def invoke(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.posts.append(body)
        if request.match_info["wid"] != self.workflow_id or request.query.get("sig") != self.sig:
            return graph_error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated only by Shared Access scheme.",
            )
        if self.canned:
            status, headers = self.canned.pop(0)
            code = WORKFLOW_ERRORS.get(status, "ServiceUnavailable")
            return graph_error(status, code, "The workflow could not be triggered.", headers)
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("type") != "message"
            or not attachments
            or attachments[0].get("contentType") != ADAPTIVE
            or not isinstance(attachments[0].get("content"), dict)
            or attachments[0]["content"].get("type") != "AdaptiveCard"
        ):
            return graph_error(400, "InvalidTemplate", "The flow could not read the card.")
        self.cards.append(attachments[0]["content"])
        run = "08584" + uuid.uuid4().hex[:20].upper()
        if self.fail_after_accept:
            self.fail_after_accept = False
            return web.Response(status=504, text="")
        return web.Response(status=202, headers={"x-ms-workflow-run-id": run})
