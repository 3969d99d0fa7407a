"""Gateway-side helpers for OAuth tests: seed an admin, walk the connect flow like a
browser, and register a plain RFC 6749 provider pointed at a :class:`FakeOAuthServer`."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientSession

from gateway import hookimpl
from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider

if TYPE_CHECKING:  # pragma: no cover
    from gateway.testing.oauth_server import FakeOAuthServer


@dataclass
class Admin:
    team: Any
    user: Any
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Team-Id": str(self.team.id)}


async def seed_admin(
    email: str = "admin@example.com", role: str = "admin", team: Any = None
) -> Admin:
    """A team (new unless given), a user with ``role`` in it, and an API token."""
    from gateway.identity import service
    from gateway.identity.tokens import create_api_token

    if team is None:
        team = await service.create_team("Acme", None)
    user = await service.create_user(email)
    await service.add_member(team, user, role)
    token, _row = await create_api_token(user, "test", None)
    return Admin(team, user, token)


async def follow_authorize(authorization_url: str) -> str:
    """GET the provider's authorize URL like a browser would and answer the path+query
    of the gateway callback it redirects to."""
    async with ClientSession() as http:
        async with http.get(authorization_url, allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            location = resp.headers["Location"]
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


async def run_connect(
    client: Any,
    admin: Admin,
    provider: str,
    *,
    body: dict[str, Any] | None = None,
    callback_headers: dict[str, str] | None = None,
) -> Any:
    """connect (POST) -> provider authorize -> gateway callback. Answers the callback
    response."""
    resp = await client.post(
        f"/api/integrations/{provider}/connect", headers=admin.headers, json=body or {}
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    url = (await resp.get_json())["authorization_url"]
    callback = await follow_authorize(url)
    return await client.get(callback, headers=callback_headers or {})


async def connected_admin(
    app: Any,
    provider: str,
    *,
    connect: bool = True,
    body: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Admin:
    """A new team's admin who connected ``provider`` (``body``: the connect request's,
    e.g. ``{"environment": "sandbox"}``; ``connect=False``: not connected) and saved
    ``settings`` as the team's settings of the plugin of the same name."""
    admin = await seed_admin()
    client = app.test_client()
    if connect:
        done = await run_connect(client, admin, provider, body=body)
        assert done.status_code == 200, await done.get_data(as_text=True)
    if settings:
        resp = await client.patch(
            f"/api/teams/{admin.team.id}/settings/{provider}", headers=admin.headers, json=settings
        )
        assert resp.status_code == 200, await resp.get_data(as_text=True)
    return admin


async def integration_status(client: Any, admin: Any, provider: str) -> dict[str, Any]:
    """The status entry of one provider, as the admin sees it."""
    resp = await client.get("/api/integrations/status", headers=admin.headers)
    assert resp.status_code == 200
    body = await resp.get_json()
    return next(i for i in body["integrations"] if i["provider"] == provider)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def provider_plugin(
    server: FakeOAuthServer, name: str = "acme_crm", **overrides: Any
) -> tuple[str, object]:
    """A plugin (for ``make_app(extra_plugins=[...])``) registering a plain RFC 6749
    provider pointed at ``server``; ``overrides`` replace OAuthProvider fields."""

    async def identity(req: IdentityRequest) -> AccountInfo:
        async with req.http.get(
            server.endpoint("userinfo"),
            headers={"Authorization": f"Bearer {req.token['access_token']}"},
        ) as resp:
            resp.raise_for_status()
            body = await resp.json()
        return AccountInfo(account_id=body["sub"], label=body["email"])

    def providers(config: Any) -> list[OAuthProvider]:
        fields: dict[str, Any] = {
            "name": name,
            "display_name": "Acme CRM",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
            "authorize_url": server.endpoint("authorize"),
            "token_url": server.endpoint("token"),
            "revocation_url": server.endpoint("revoke"),
            "scopes": ("contacts.read", "calls.write"),
            "fetch_identity": identity,
        }
        fields.update(overrides)
        return [OAuthProvider(**fields)]

    ns = types.SimpleNamespace(register_oauth_providers=hookimpl(providers))
    return (f"test_{name}", ns)
