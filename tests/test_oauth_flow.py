"""connect -> callback -> status -> refresh -> disconnect over real HTTP against a
loopback OAuth server, with a provider described by a test plugin (the core has no
provider names)."""

from __future__ import annotations

import types
from typing import Any

import pytest

from gateway import hookimpl
from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider
from tests.support.oauth_server import (
    FakeOAuthServer,
    follow_authorize,
    query_of,
    run_connect,
    seed_admin,
)

NAME = "acme_crm"


def provider_plugin(server: FakeOAuthServer, **overrides: Any) -> tuple[str, object]:
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
            "name": NAME,
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
    return ("test_acme_crm", ns)


@pytest.fixture
async def server():
    async with FakeOAuthServer() as srv:
        yield srv


@pytest.fixture
async def oapp(make_app, server):
    return await make_app(extra_plugins=[provider_plugin(server)])


async def test_full_cycle(oapp, server, clock):
    client = oapp.test_client()
    admin = await seed_admin()
    resp = await run_connect(client, admin, NAME)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    body = await resp.get_json()
    assert body["status"] == "connected"
    assert body["account"]["label"] == "owner@example.com"

    status = await (await client.get("/api/integrations/status", headers=admin.headers)).get_json()
    entry = next(i for i in status["integrations"] if i["provider"] == NAME)
    assert entry["status"] == "connected"
    assert entry["scopes"] == ["contacts.read", "calls.write"]
    assert entry["connected_by"]["email"] == "admin@example.com"
    assert "at-" not in str(status) and "rt-" not in str(status)

    from gateway.oauth import get_access_token

    async with oapp.app_context():
        first = await get_access_token(admin.team, NAME)
        assert await get_access_token(admin.team, NAME) == first
        assert server.refresh_calls == 0
        clock.advance(3600 - 60)  # inside the refresh-ahead window
        second = await get_access_token(admin.team, NAME)
    assert second != first and server.refresh_calls == 1

    resp = await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    out = await resp.get_json()
    assert out["status"] == "not_connected" and out["revoked"] is True
    assert len(server.revoked) == 1 and server.live_refresh_tokens() == []
    again = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert again["status"] == "not_connected" and again["revoked"] is None


async def test_get_connect_redirects(oapp, server):
    client = oapp.test_client()
    admin = await seed_admin()
    resp = await client.get(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 302
    q = query_of(resp.headers["Location"])
    assert q["code_challenge_method"] == "S256" and len(q["state"]) >= 22
    callback = await follow_authorize(resp.headers["Location"])
    done = await client.get(callback)
    assert done.status_code == 200
