"""The Microsoft Teams plugin against a loopback Microsoft identity platform + Graph:
connect -> callback -> status -> refresh (rotating refresh tokens) -> disconnect (no
revocation endpoint) over real HTTP, AADSTS errors, tenant and scope settings."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import StartupError
from gateway.oauth import get_access_token
from gateway.oauth.models import OAuthConnection
from gateway.oauth.tokens import ReconnectRequired
from gateway.testing import integration_status, query_of, run_connect, seed_admin
from tests.support.fake_microsoft import TENANT_ID, USER_ID, FakeMicrosoft, plugin_settings

NAME = "microsoft_teams"


@pytest.fixture
async def ms():
    async with FakeMicrosoft() as srv:
        yield srv


async def _status(client: Any, admin: Any) -> dict[str, Any]:
    return await integration_status(client, admin, NAME)


async def test_full_cycle(make_app, ms, clock, db_kind):
    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(ms)})
    client = app.test_client()
    admin = await seed_admin()

    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    url = (await resp.get_json())["authorization_url"]
    assert url.startswith(f"{ms.url}/organizations/oauth2/v2.0/authorize?")
    q = query_of(url)
    assert q["scope"] == "openid profile offline_access User.Read ChannelMessage.Send"
    assert q["prompt"] == "select_account" and q["code_challenge_method"] == "S256"

    done = await run_connect(client, admin, NAME)
    assert done.status_code == 200, await done.get_data(as_text=True)
    entry = await _status(client, admin)
    assert entry["status"] == "connected"
    assert entry["account"] == {"id": USER_ID, "label": "ada@acme.example"}
    assert entry["scopes"] == ["User.Read", "ChannelMessage.Send"]
    row = await OAuthConnection.get(team_id=admin.team.id, provider=NAME)
    assert row.account_data["tenant_id"] == TENANT_ID
    assert row.account_data["user_principal_name"] == "ada@acme.onmicrosoft.com"

    async with app.app_context():
        first = await get_access_token(admin.team, NAME)
        issued_rt = ms.live_refresh_tokens()
        for _ in range(3):  # each refresh must present the refresh token of the last one
            clock.advance(4599)
            assert await get_access_token(admin.team, NAME) != first
    assert ms.refresh_calls == 3
    presented = [r["refresh_token"] for r in ms.token_requests if "refresh_token" in r]
    assert presented[0] == issued_rt[0] and len(set(presented)) == 3
    refreshes = [r for r in ms.token_requests if r["grant_type"] == "refresh_token"]
    assert {r["scope"] for r in refreshes} == {q["scope"]}
    assert (await _status(client, admin))["status"] == "connected"

    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    # No revocation endpoint: the tokens are forgotten, and the answer says nothing was revoked.
    assert out == {"provider": NAME, "status": "not_connected", "revoked": None}
    assert ms.revoked == []
    assert (await _status(client, admin))["status"] == "not_connected"


@pytest.mark.parametrize("error", ["invalid_grant", "interaction_required"])
async def test_dead_refresh_token_needs_reconnect(make_app, ms, clock, error):
    app = await make_app(plugins={NAME: plugin_settings(ms)})
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    ms.next_error = error  # AADSTS70008 (expired) / AADSTS50076 (MFA now required)
    clock.advance(4599)
    async with app.app_context():
        with pytest.raises(ReconnectRequired):
            await get_access_token(admin.team, NAME)
    entry = await _status(client, admin)
    assert entry["status"] == "needs_reconnect"
    assert "AADSTS" not in str(entry)  # the provider's free text is not echoed


async def test_revoked_refresh_token_needs_reconnect(make_app, ms, clock):
    app = await make_app(plugins={NAME: plugin_settings(ms)})
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    ms.revoke_all_refresh_tokens()
    clock.advance(4599)
    async with app.app_context():
        with pytest.raises(ReconnectRequired):
            await get_access_token(admin.team, NAME)
    assert (await _status(client, admin))["status"] == "needs_reconnect"


async def test_single_tenant_authority(make_app):
    async with FakeMicrosoft(tenant="acme.onmicrosoft.com") as ms:
        app = await make_app(plugins={NAME: plugin_settings(ms)})
        client = app.test_client()
        admin = await seed_admin()
        done = await run_connect(client, admin, NAME)
        assert done.status_code == 200, await done.get_data(as_text=True)
        assert ms.authorize_requests and ms.code_calls == 1


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"scopes": ["openid", "User.Read"]}, "scopes"),
        ({"scopes": ["openid,offline_access"]}, "scopes"),
        ({"tenant": "../evil"}, "tenant"),
        ({"graph_base_url": "graph.microsoft.com"}, "graph_base_url"),
    ],
)
async def test_bad_settings_fail_at_startup(make_app, settings, key):
    with pytest.raises(StartupError, match=rf"microsoft_teams.*{key}"):
        await make_app(plugins={NAME: settings})


async def test_unconfigured(make_app):
    app = await make_app(plugins={NAME: {}})
    assert any("microsoft_teams" in w for w in app.extensions["gateway"].warnings)
    client = app.test_client()
    admin = await seed_admin()
    assert (await _status(client, admin))["configured"] is False
    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 503


async def test_concurrent_callers_refresh_once(make_app, ms, clock, db_kind):
    """Rotating refresh tokens make a double refresh fatal (the loser presents a retired
    token): 20 callers at once must cause exactly one refresh."""
    import asyncio

    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(ms)})
    admin = await seed_admin()
    await run_connect(app.test_client(), admin, NAME)
    ms.refresh_delay = 0.05  # keep the refresh in flight while the others arrive
    clock.advance(4599)
    async with app.app_context():
        tokens = await asyncio.gather(*(get_access_token(admin.team, NAME) for _ in range(20)))
    assert ms.refresh_calls == 1 and len(set(tokens)) == 1
    assert (await _status(app.test_client(), admin))["status"] == "connected"
