"""Google Calendar over real HTTP: a loopback server that speaks Google's OAuth dialect
(offline access, PKCE, userinfo, form ``token=`` revocation, its error bodies)."""

from __future__ import annotations

import pytest

from gateway.oauth import ReconnectRequired, get_access_token
from gateway.testing import FakeOAuthServer, integration_status, query_of, run_connect, seed_admin
from tests.support.fake_google_calendar import FakeGoogle

NAME = "google_calendar"


def settings(server: FakeOAuthServer, **extra) -> dict:
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "authorize_url": server.endpoint("authorize"),
        "token_url": server.endpoint("token"),
        "revocation_url": server.endpoint("revoke"),
        "userinfo_url": server.endpoint("userinfo"),
        **extra,
    }


@pytest.fixture
async def google():
    async with FakeGoogle() as srv:
        yield srv


@pytest.fixture
async def gapp(make_app, google):
    return await make_app(plugins={NAME: settings(google)})


async def test_connect_asks_for_offline_access_with_pkce(gapp, google):
    client = gapp.test_client()
    admin = await seed_admin()
    resp = await run_connect(client, admin, NAME)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    q = google.authorize_requests[0]
    assert q["access_type"] == "offline" and q["prompt"] == "consent"
    assert q["scope"].split() == [
        "openid",
        "email",
        "https://www.googleapis.com/auth/calendar.events",
    ]
    assert q["redirect_uri"] == "https://gateway.test/api/integrations/google_calendar/callback"
    assert q["code_challenge_method"] == "S256"
    exchange = google.token_requests[0]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    entry = await integration_status(client, admin, NAME)
    assert entry["status"] == "connected"
    assert entry["account"] == {"id": "1098", "label": "rep@acme.example"}
    assert entry["access_token_expires_at"] is not None


async def test_cycle_refresh_keeps_the_refresh_token_then_disconnect_revokes(gapp, google, clock):
    client = gapp.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    [refresh_token] = google.live_refresh_tokens()
    async with gapp.app_context():
        clock.advance(3600)
        token = await get_access_token(admin.team.id, NAME)
        assert google.refresh_calls == 1
        clock.advance(3600)
        assert await get_access_token(admin.team.id, NAME) != token
    # Google sent no new refresh token: the stored one is still the one in use.
    assert [r["refresh_token"] for r in google.token_requests[1:]] == [refresh_token] * 2
    resp = await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    assert (await resp.get_json())["revoked"] is True
    assert google.revoked == [refresh_token] and google.live_refresh_tokens() == []
    assert (await integration_status(client, admin, NAME))["status"] == "not_connected"


async def test_access_revoked_at_google_turns_into_needs_reconnect(gapp, google, clock):
    client = gapp.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    google.revoke_all_refresh_tokens()  # the user removed the app in their Google account
    clock.advance(3600)
    async with gapp.app_context():
        with pytest.raises(ReconnectRequired):
            await get_access_token(admin.team, NAME)
        with pytest.raises(ReconnectRequired):  # no second call to Google
            await get_access_token(admin.team, NAME)
    assert google.refresh_calls == 1
    entry = await integration_status(client, admin, NAME)
    assert entry["status"] == "needs_reconnect"
    assert "invalid_grant" in entry["last_error"]
    # Disconnecting a dead grant: Google says invalid_token, which counts as revoked.
    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert out["status"] == "not_connected" and out["revoked"] is True
    # Reconnecting brings it back.
    assert (await run_connect(client, admin, NAME)).status_code == 200
    assert (await integration_status(client, admin, NAME))["status"] == "connected"


async def test_revocation_failure_is_reported_and_tokens_still_forgotten(gapp, google):
    client = gapp.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME)
    from gateway.testing import CannedResponse

    google.revoke_failure = CannedResponse(503, {"error": "backend_error"})
    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert out == {
        "provider": NAME,
        "status": "not_connected",
        "revoked": False,
        "revocation_error": "HTTP 503",
    }
    assert (await integration_status(client, admin, NAME))["status"] == "not_connected"


async def test_unconfigured_plugin_is_listed_and_connect_answers_503(make_app):
    app = await make_app(plugins={NAME: {}})
    client = app.test_client()
    admin = await seed_admin()
    entry = await integration_status(client, admin, NAME)
    assert entry["configured"] is False and entry["status"] == "not_connected"
    resp = await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 503
    body = await resp.get_json()
    assert body["code"] == "SERVICE_UNAVAILABLE" and body["reason"] == "not_configured"
    assert any("google_calendar" in w for w in app.extensions["gateway"].warnings)


async def test_connect_with_return_path_redirects_back(gapp, google):
    client = gapp.test_client()
    admin = await seed_admin()
    resp = await run_connect(client, admin, NAME, body={"return_to": "/settings/integrations"})
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert loc.startswith("/settings/integrations?")
    assert query_of(loc) == {"integration": NAME, "status": "connected"}
