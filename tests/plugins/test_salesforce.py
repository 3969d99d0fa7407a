"""The Salesforce plugin's OAuth side against a loopback Salesforce (login host + org): the
login host chosen per connection, connect -> callback -> status -> refresh after a 401
INVALID_SESSION_ID -> disconnect over real HTTP, the signed token response, and
``invalid_grant`` turning the connection into ``needs_reconnect``. The org's API is
called as a handler would, through a ``ProviderSession`` on the connection's instance
URL. The CRM side is tests/plugins/test_salesforce_crm.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.oauth import get_access_token
from gateway.oauth.models import OAuthConnection
from gateway.oauth.tokens import NotConnected, ReconnectRequired
from gateway.sync import ProviderError, ProviderResponse, ProviderSession
from gateway.testing import integration_status, query_of, run_connect, seed_admin
from plugins.salesforce import session_expired
from tests.support.fake_salesforce import ORG_ID, USER_ID, FakeSalesforce, plugin_settings

NAME = "salesforce"
SANDBOX = {"environment": "sandbox"}


@pytest.fixture
async def sf():
    async with FakeSalesforce() as srv:
        yield srv


async def api_request(app: Any, team: Any, method: str, path: str) -> ProviderResponse:
    """The org's REST API as a handler calls it: the instance URL from the connection,
    one refresh after 401 INVALID_SESSION_ID."""
    api = ProviderSession(
        app,
        team.id,
        NAME,
        base_url=lambda account: account["instance_url"],
        token_rejected=session_expired,
    )
    return await api.request(method, path)


async def _status(client: Any, admin: Any) -> dict[str, Any]:
    return await integration_status(client, admin, NAME)


async def _connect_url(client: Any, admin: Any, body: dict[str, str]) -> Any:
    return await client.post(f"/api/integrations/{NAME}/connect", headers=admin.headers, json=body)


async def test_full_cycle_on_a_sandbox(make_app, sf, clock, db_kind):
    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(sf)})
    client = app.test_client()
    admin = await seed_admin()

    resp = await _connect_url(client, admin, SANDBOX)
    url = (await resp.get_json())["authorization_url"]
    assert url.startswith(f"{sf.url}/services/oauth2/authorize?")
    assert query_of(url)["scope"] == "api refresh_token id"

    done = await run_connect(client, admin, NAME, body=SANDBOX)
    assert done.status_code == 200, await done.get_data(as_text=True)
    assert sf.token_requests[-1]["client_id"] == sf.client_id  # client in the form body

    entry = await _status(client, admin)
    assert entry["status"] == "connected"
    assert entry["account"] == {"id": f"{ORG_ID}/{USER_ID}", "label": "rep@acme.example.sandbox"}
    assert entry["access_token_expires_at"] is None  # Salesforce does not say
    row = await OAuthConnection.get(team_id=admin.team.id, provider=NAME)
    assert row.account_data["instance_url"] == sf.url
    assert row.account_data["identity_url"] == sf.identity_url()
    assert row.options == {"environment": "sandbox"}

    async with app.app_context():
        answer = await api_request(app, admin.team, "GET", "/services/data/v62.0/limits")
        assert answer.status == 200 and answer.body["DailyApiRequests"]["Max"] == 15000
        assert sf.refresh_calls == 0
        clock.advance(3 * 3600)  # no expiry known: time alone never triggers a refresh
        await get_access_token(admin.team, NAME)
        assert sf.refresh_calls == 0

        sf.expire_access_tokens()  # the org's session timeout passed
        answer = await api_request(app, admin.team, "GET", "/services/data/v62.0/limits")
    assert answer.status == 200
    assert sf.refresh_calls == 1  # one refresh after 401 INVALID_SESSION_ID, one retry
    assert sf.api_calls.count("/services/data/v62.0/limits") == 3
    assert (await _status(client, admin))["status"] == "connected"

    out = await (
        await client.post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    ).get_json()
    assert out["status"] == "not_connected" and out["revoked"] is True
    assert sf.live_refresh_tokens() == []  # revoked at the sandbox host it was issued by
    async with app.app_context():
        with pytest.raises(NotConnected):
            await api_request(app, admin.team, "GET", "/services/data/v62.0/limits")


async def test_other_errors_are_not_retried(make_app, sf):
    app = await make_app(plugins={NAME: plugin_settings(sf)})
    admin = await seed_admin()
    await run_connect(app.test_client(), admin, NAME, body=SANDBOX)
    with pytest.raises(ProviderError) as refused:
        await api_request(app, admin.team, "GET", "/services/data/v62.0/sobjects/Task/1")
    assert refused.value.status == 404 and refused.value.marker == "NOT_FOUND"
    assert sf.refresh_calls == 0


GOOD_HOSTS = [
    ({}, "https://login.salesforce.com/services/oauth2/authorize?"),
    ({"environment": "production"}, "https://login.salesforce.com/services/oauth2/authorize?"),
    ({"my_domain": "acme.my.salesforce.com"}, "https://acme.my.salesforce.com/services/"),
    (
        {"my_domain": "Acme--UAT.sandbox.my.salesforce.com"},
        "https://acme--uat.sandbox.my.salesforce.com/services/oauth2/authorize?",
    ),
]
BAD_HOSTS = [
    {"my_domain": "evil.example.com"},
    {"my_domain": "acme.my.salesforce.com.evil.com"},
    {"my_domain": "acme.my.salesforce.com/path"},
    {"my_domain": "acme.my.salesforce.com:8443"},
    {"my_domain": "user@acme.my.salesforce.com"},
    {"my_domain": "my.salesforce.com"},
    {"my_domain": "a.b.my.salesforce.com"},
    {"environment": "staging"},
    {"environment": "sandbox", "my_domain": "acme.my.salesforce.com"},
]


async def test_login_host_choice(make_app, sf):
    app = await make_app(plugins={NAME: plugin_settings(sf)})
    client = app.test_client()
    admin = await seed_admin()
    for body, prefix in GOOD_HOSTS:
        resp = await _connect_url(client, admin, body)
        assert resp.status_code == 200, body
        assert (await resp.get_json())["authorization_url"].startswith(prefix), body
    for body in BAD_HOSTS:
        resp = await _connect_url(client, admin, body)
        assert resp.status_code == 400, body
        out = await resp.get_json()
        assert out["code"] == "VALIDATION_ERROR" and "error" in out


async def test_my_domain_can_be_disabled(make_app, sf):
    app = await make_app(plugins={NAME: plugin_settings(sf, allow_my_domain=False)})
    admin = await seed_admin()
    resp = await _connect_url(app.test_client(), admin, {"my_domain": "acme.my.salesforce.com"})
    assert resp.status_code == 400


async def test_tampered_token_response_is_refused(make_app):
    async with FakeSalesforce(signing_secret="not-the-consumer-secret") as sf:
        app = await make_app(plugins={NAME: plugin_settings(sf)})
        client = app.test_client()
        admin = await seed_admin()
        done = await run_connect(client, admin, NAME, body=SANDBOX)
        assert done.status_code == 502
        assert (await done.get_json())["code"] == "IDENTITY_FAILED"
        assert (await _status(client, admin))["status"] == "not_connected"


async def test_revoked_refresh_token_needs_reconnect(make_app, sf, db_kind):
    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(sf)})
    client = app.test_client()
    admin = await seed_admin()
    await run_connect(client, admin, NAME, body=SANDBOX)
    sf.revoke_all_refresh_tokens()  # e.g. the user's OAuth grant was revoked in Setup
    with pytest.raises(ReconnectRequired):
        await api_request(app, admin.team, "GET", "/services/data/v62.0/limits")
    assert sf.refresh_calls == 1
    entry = await _status(client, admin)
    assert entry["status"] == "needs_reconnect"


async def test_unconfigured(make_app):
    app = await make_app(plugins={NAME: {}})
    assert any("salesforce" in w for w in app.extensions["gateway"].warnings)
    admin = await seed_admin()
    client = app.test_client()
    assert (await _status(client, admin))["configured"] is False
    resp = await _connect_url(client, admin, SANDBOX)
    assert resp.status_code == 503


async def test_concurrent_401s_refresh_once(make_app, sf, db_kind):
    """Ten API calls hit an ended session at once: one refresh, every call retried with
    the new token."""
    import asyncio

    app = await make_app(db=db_kind, plugins={NAME: plugin_settings(sf)})
    admin = await seed_admin()
    await run_connect(app.test_client(), admin, NAME, body=SANDBOX)
    sf.expire_access_tokens()
    sf.refresh_delay = 0.05
    results = await asyncio.gather(
        *(api_request(app, admin.team, "GET", "/services/data/v62.0/limits") for _ in range(10))
    )
    assert [answer.status for answer in results] == [200] * 10
    assert sf.refresh_calls == 1


async def test_browser_connect_to_my_domain(make_app, sf):
    app = await make_app(plugins={NAME: plugin_settings(sf)})
    admin = await seed_admin()
    resp = await app.test_client().get(
        f"/api/integrations/{NAME}/connect?my_domain=acme.my.salesforce.com",
        headers=admin.headers,
    )
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(
        "https://acme.my.salesforce.com/services/oauth2/authorize?"
    )


@pytest.mark.parametrize("why", ["untrusted host", "bad signature"])
async def test_a_refresh_naming_an_unsafe_instance_url_is_not_followed(make_app, sf, caplog, why):
    moved = await sf.add_instance()
    app = await make_app(plugins={NAME: plugin_settings(sf, login_base_url=moved)})
    admin = await seed_admin()
    await run_connect(app.test_client(), admin, NAME, body=SANDBOX)
    if why == "untrusted host":
        sf.instance_url = "https://org.evil.example"  # the token would be sent there
    else:
        sf.instance_url, sf.signing_secret = moved, "not-the-consumer-secret"
    sf.expire_access_tokens()
    answer = await api_request(app, admin.team, "GET", "/services/data/v62.0/limits")
    assert answer.status == 200 and sf.refresh_calls == 1  # the old instance, new token
    row = await OAuthConnection.get(team_id=admin.team.id, provider=NAME)
    assert row.account_data["instance_url"] == sf.url
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("instance URL is kept" in m for m in warned)
