"""The HubSpot plugin against a loopback HubSpot OAuth server: connect -> callback ->
status -> refresh -> disconnect over real HTTP, HubSpot's error bodies, camelCase token
responses, and the unconfigured case."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.oauth import get_access_token
from gateway.oauth.tokens import ReconnectRequired
from gateway.testing import integration_status, query_of, run_connect, seed_admin
from tests.support.fake_hubspot import FakeHubSpot, plugin_settings

NAME = "hubspot"
SCOPES = ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"]


@pytest.fixture
async def hubspot():
    async with FakeHubSpot() as srv:
        yield srv


async def _app(make_app: Any, server: FakeHubSpot, **extra: Any) -> Any:
    return await make_app(plugins={NAME: plugin_settings(server, **extra)})


async def _status(client: Any, admin: Any) -> dict[str, Any]:
    return await integration_status(client, admin, NAME)


async def test_full_cycle(make_app, hubspot, clock, db_kind, caplog):
    caplog.set_level(logging.DEBUG)
    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(hubspot)})
    client = app.test_client()
    admin = await seed_admin()

    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    url = (await resp.get_json())["authorization_url"]
    assert url.startswith(f"{hubspot.url}/oauth/authorize?")
    q = query_of(url)
    assert q["scope"] == "oauth crm.objects.contacts.read crm.objects.contacts.write"
    assert q["code_challenge_method"] == "S256" and q["client_id"] == "hs-client-id"

    done = await run_connect(client, admin, NAME)
    assert done.status_code == 200, await done.get_data(as_text=True)
    # The code exchange went to the date-versioned endpoint with the client in the body.
    exchange = hubspot.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    assert exchange["client_id"] == "hs-client-id"

    entry = await _status(client, admin)
    assert entry["status"] == "connected"
    assert entry["account"] == {"id": "24681357", "label": "rep@acme.example / acme.hubspot.com"}
    assert entry["scopes"] == SCOPES
    # Identity came from the introspection endpoint, authenticated with the client.
    assert hubspot.introspections[-1]["token_type_hint"] == "access_token"

    async with app.app_context():
        first = await get_access_token(admin.team, NAME)
        clock.advance(20 * 60)
        assert await get_access_token(admin.team, NAME) == first  # 10 min left: still fine
        clock.advance(6 * 60)  # 4 min left: inside the refresh-ahead window
        second = await get_access_token(admin.team, NAME)
    assert second != first and hubspot.refresh_calls == 1
    refresh = hubspot.token_requests[-1]
    assert refresh["grant_type"] == "refresh_token" and refresh["client_id"] == "hs-client-id"
    # HubSpot sent no new refresh token: the original stays the live one.
    assert refresh["refresh_token"] in hubspot.live_refresh_tokens()

    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert out["status"] == "not_connected" and out["revoked"] is True
    assert hubspot.revocations[-1]["token_type_hint"] == "refresh_token"
    assert hubspot.revocations[-1]["client_id"] == "hs-client-id"
    assert hubspot.live_refresh_tokens() == []
    assert (await _status(client, admin))["status"] == "not_connected"
    # Nothing secret reached a log line, whatever the level.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    secrets = [first, second, refresh["refresh_token"], hubspot.client_secret]
    assert logged and not [s for s in secrets if s in logged]


async def test_thirty_minute_expiry_is_stored(make_app, hubspot, clock):
    app = await _app(make_app, hubspot)
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    entry = await _status(client, admin)
    from datetime import datetime, timedelta

    expires = datetime.fromisoformat(entry["access_token_expires_at"])
    assert expires == clock.now() + timedelta(seconds=1800)


async def test_camel_case_token_responses(make_app, clock):
    async with FakeHubSpot(camel_case=True) as server:
        app = await _app(make_app, server)
        client = app.test_client()
        admin = await seed_admin()
        done = await run_connect(client, admin, NAME)
        assert done.status_code == 200, await done.get_data(as_text=True)
        entry = await _status(client, admin)
        assert entry["status"] == "connected" and entry["account"]["id"] == "24681357"
        assert entry["scopes"] == SCOPES
        async with app.app_context():
            clock.advance(1800)
            await get_access_token(admin.team, NAME)
        assert server.refresh_calls == 1
        assert (await _status(client, admin))["status"] == "connected"


@pytest.mark.parametrize("style", ["v1", "new"])
async def test_revoked_refresh_token_needs_reconnect(make_app, clock, style):
    async with FakeHubSpot(error_style=style) as server:
        app = await _app(make_app, server)
        client = app.test_client()
        admin = await seed_admin()
        await run_connect(client, admin, NAME)
        server.revoke_all_refresh_tokens()  # the portal uninstalled the app
        clock.advance(1800)
        async with app.app_context():
            with pytest.raises(ReconnectRequired):
                await get_access_token(admin.team, NAME)
        assert server.refresh_calls == 1
        entry = await _status(client, admin)
        assert entry["status"] == "needs_reconnect"
        # Dead for good: no further calls to HubSpot.
        async with app.app_context():
            with pytest.raises(ReconnectRequired):
                await get_access_token(admin.team, NAME)
        assert server.refresh_calls == 1


async def test_server_error_on_refresh_is_transient(make_app, hubspot, clock):
    app = await _app(make_app, hubspot)
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    hubspot.fail_next_token_request(
        502, {"status": "error", "message": "Bad gateway", "correlationId": "x"}
    )
    clock.advance(1800)
    from gateway.oauth.tokens import TokenUnavailable

    async with app.app_context():
        with pytest.raises(TokenUnavailable):
            await get_access_token(admin.team, NAME)
    assert (await _status(client, admin))["status"] == "error"
    async with app.app_context():
        await get_access_token(admin.team, NAME)  # HubSpot is back: same refresh token works
    assert (await _status(client, admin))["status"] == "connected"


async def test_disconnect_after_uninstall_still_forgets(make_app, hubspot):
    app = await _app(make_app, hubspot)
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    hubspot.revoke_all_refresh_tokens()
    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    # HubSpot answers BAD_REFRESH_TOKEN: the token is already gone, which is the goal.
    assert out["revoked"] is True and out["status"] == "not_connected"


async def test_revocation_failure_is_reported_and_tokens_forgotten(make_app, hubspot):
    from gateway.testing import CannedResponse

    app = await _app(make_app, hubspot)
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    hubspot.revoke_failure = CannedResponse(503, {"status": "error", "message": "down"})
    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert out["revoked"] is False and "503" in out["revocation_error"]
    assert (await _status(client, admin))["status"] == "not_connected"


async def test_unconfigured_is_listed_and_connect_answers_clearly(make_app):
    app = await make_app(plugins={NAME: {}})
    gw = app.extensions["gateway"]
    assert any("hubspot" in w and "client_id" in w for w in gw.warnings)
    client = app.test_client()
    admin = await seed_admin()
    entry = await _status(client, admin)
    assert entry["configured"] is False and entry["status"] == "not_connected"
    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 503
    body = await resp.get_json()
    assert set(body) >= {"error", "code"}


async def test_bad_settings_fail_at_startup(make_app):
    from gateway.errors import StartupError

    with pytest.raises(StartupError, match=r"hubspot.*api_base_url"):
        await make_app(plugins={NAME: {"api_base_url": "ftp://nope"}})


async def test_browser_connect_with_optional_scopes(make_app, hubspot):
    app = await _app(make_app, hubspot, optional_scopes=["crm.objects.deals.read"])
    admin = await seed_admin()
    resp = await app.test_client().get(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 302
    q = query_of(resp.headers["Location"])
    assert q["optional_scope"] == "crm.objects.deals.read"
    assert q["redirect_uri"] == "https://gateway.test/api/integrations/hubspot/callback"
