"""connect -> callback -> status -> refresh -> disconnect over real HTTP against a
loopback OAuth server, with a provider described by a test plugin (the core has no
provider names)."""

from __future__ import annotations

import pytest

from gateway.testing import (
    FakeOAuthServer,
    follow_authorize,
    provider_plugin,
    query_of,
    run_connect,
    seed_admin,
)

NAME = "acme_crm"


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


async def test_return_path_with_a_fragment_keeps_it_last(oapp):
    client = oapp.test_client()
    admin = await seed_admin()
    resp = await run_connect(client, admin, NAME, body={"return_to": "/app?x=1#/integrations"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/app?x=1&integration={NAME}&status=connected#/integrations"


async def test_integration_endpoints_are_rate_limited_per_user(oapp):
    client = oapp.test_client()
    admin = await seed_admin()
    other = await seed_admin("other@example.com", team=admin.team)
    codes = [
        (await client.get("/api/integrations/status", headers=admin.headers)).status_code
        for _ in range(121)
    ]
    assert codes[:120] == [200] * 120
    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 429 and (await resp.get_json())["code"] == "RATE_LIMITED"
    assert int(resp.headers["Retry-After"]) > 0
    assert codes[120] == 429
    # Another user of the same team is counted apart.
    ok = await client.get("/api/integrations/status", headers=other.headers)
    assert ok.status_code == 200
