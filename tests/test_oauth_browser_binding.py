"""An authorization completes only in the browser that started it.

The attack: an admin starts a connect and sends the provider's URL to someone who is not
signed in to the gateway; that person consents at the provider, and their account would
land in the admin's team. Each test client below is one browser (its own cookie jar)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.identity import service
from gateway.oauth.models import OAuthConnection, OAuthState
from gateway.testing import (
    FakeOAuthServer,
    follow_authorize,
    provider_plugin,
    query_of,
    seed_admin,
)
from tests.support.identity import login, make_user

A, B = "acme_crm", "beta_crm"


@pytest.fixture
async def server() -> Any:
    async with FakeOAuthServer() as srv:
        yield srv


@pytest.fixture
async def app(make_app: Any, server: Any, db_kind: str) -> Any:
    return await make_app(
        db=db_kind, extra_plugins=[provider_plugin(server, A), provider_plugin(server, B)]
    )


async def connect(browser: Any, headers: dict[str, str], provider: str = A, **body: Any) -> dict:
    resp = await browser.post(
        f"/api/integrations/{provider}/connect", headers=headers, json=body or {}
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return await resp.get_json()


async def code_of(resp: Any, status: int) -> str:
    assert resp.status_code == status, await resp.get_data(as_text=True)
    return (await resp.get_json())["code"]


async def test_a_victim_following_the_admins_url_connects_nothing(app: Any, server: Any) -> None:
    attacker = await seed_admin()
    attackers_browser, victims_browser = app.test_client(), app.test_client()
    started = await connect(attackers_browser, attacker.headers)
    # The victim, signed in to nothing here, consents at the provider...
    callback = await follow_authorize(started["authorization_url"])
    resp = await victims_browser.get(callback)
    assert await code_of(resp, 403) == "STATE_BROWSER_MISMATCH"
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0
    # ...and has not even used the state up: it stays the starting browser's.
    assert await OAuthState.all().count() == 1
    assert (await attackers_browser.get(callback)).status_code == 200


async def test_a_planted_or_stale_cookie_does_not_match(app: Any) -> None:
    admin = await seed_admin()
    mine = app.test_client()
    first = await connect(mine, admin.headers)
    callback = await follow_authorize(first["authorization_url"])
    other = app.test_client()
    await connect(other, admin.headers)  # a cookie of another flow, same provider
    assert await code_of(await other.get(callback), 403) == "STATE_BROWSER_MISMATCH"
    other.set_cookie("localhost", "__Host-gateway_oauth_acme_crm", "forged-nonce-value")
    assert await code_of(await other.get(callback), 403) == "STATE_BROWSER_MISMATCH"


async def test_the_cookie_is_short_lived_http_only_lax_and_host_only(app: Any) -> None:
    admin = await seed_admin()
    resp = await app.test_client().post(
        f"/api/integrations/{A}/connect", headers=admin.headers, json={}
    )
    cookie = resp.headers["Set-Cookie"]
    name, attributes = cookie.split("=", 1)[0], cookie.lower()
    # public_url is https here: the __Host- prefix (no Domain, Path=/, Secure).
    assert name == "__Host-gateway_oauth_acme_crm"
    for part in ("httponly", "samesite=lax", "secure", "path=/", "max-age=600"):
        assert part in attributes, part
    assert "domain=" not in attributes
    nonce = cookie.split("=", 1)[1].split(";", 1)[0]
    row = await OAuthState.get()
    assert row.browser_hash and nonce not in row.browser_hash


async def test_two_providers_connect_side_by_side_in_one_browser(app: Any) -> None:
    admin = await seed_admin()
    browser = app.test_client()
    first = await connect(browser, admin.headers, A)
    second = await connect(browser, admin.headers, B)
    for started in (second, first):
        assert (
            await browser.get(await follow_authorize(started["authorization_url"]))
        ).status_code == 200
    assert await OAuthConnection.filter(team_id=admin.team.id).count() == 2


async def signed_in_admin(app: Any, email: str, team: Any = None) -> tuple[Any, Any, dict]:
    """An admin with a password (a team of their own unless given) and a browser
    signed in as them."""
    from gateway.auth.tokens import create_api_token

    user = await make_user(email)
    if team is None:
        team = await service.create_team("Acme", None)
    await service.add_member(team, user, "admin")
    token, _row = await create_api_token(user, "script", None)
    headers = {"Authorization": f"Bearer {token}", "X-Team-Id": str(team.id)}
    browser = app.test_client()
    await login(browser, email)
    return team, browser, headers


async def test_a_script_hands_the_admin_a_one_time_continue_link(app: Any, server: Any) -> None:
    team, admins_browser, token_headers = await signed_in_admin(app, "ann@example.com")
    script = app.test_client()
    started = await connect(script, token_headers, return_to="/settings")
    continue_url = started["continue_url"]
    assert continue_url.startswith(f"https://gateway.test/api/integrations/{A}/continue?")
    path = continue_url.removeprefix("https://gateway.test")
    resp = await admins_browser.get(path)
    assert resp.status_code == 302
    assert "gateway_oauth_acme_crm=" in resp.headers["Set-Cookie"]
    resp = await admins_browser.get(await follow_authorize(resp.headers["Location"]))
    assert resp.status_code == 302
    assert query_of(resp.headers["Location"])["status"] == "connected"
    assert await OAuthConnection.filter(team_id=team.id).count() == 1
    # One time: the link and the script's own provider URL are both used up.
    assert await code_of(await admins_browser.get(path), 400) == "INVALID_STATE"
    stale = await follow_authorize(started["authorization_url"])
    assert await code_of(await admins_browser.get(stale), 400) == "INVALID_STATE"
    assert server.code_calls == 1


async def test_the_continue_link_is_no_use_to_anyone_else(app: Any, server: Any) -> None:
    team, _browser, token_headers = await signed_in_admin(app, "ann@example.com")
    started = await connect(app.test_client(), token_headers)
    path = started["continue_url"].removeprefix("https://gateway.test")
    # Not signed in (the victim of a forwarded link): refused.
    assert await code_of(await app.test_client().get(path), 401) == "UNAUTHORIZED"
    # Signed in as someone else, even an admin of the same team: refused.
    _team, others_browser, _h = await signed_in_admin(app, "bob@example.com", team)
    assert await code_of(await others_browser.get(path), 403) == "STATE_USER_MISMATCH"
    assert await OAuthState.all().count() == 1  # still usable by its owner
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0


async def test_browser_flow_with_a_session_and_get_connect(app: Any) -> None:
    team, browser, _h = await signed_in_admin(app, "ann@example.com")
    resp = await browser.get(f"/api/integrations/{A}/connect?team_id={team.id}")
    assert resp.status_code == 302
    done = await browser.get(await follow_authorize(resp.headers["Location"]))
    assert done.status_code == 200
    # The used-up flow's cookie is cleared.
    assert "gateway_oauth_acme_crm=;" in done.headers["Set-Cookie"].replace('""', "")


async def test_a_malformed_return_url_is_a_400(app: Any) -> None:
    admin = await seed_admin()
    for target in ("http://[::1/x", "https://gateway.test:abc/x"):
        resp = await app.test_client().post(
            f"/api/integrations/{A}/connect", headers=admin.headers, json={"return_to": target}
        )
        assert await code_of(resp, 400) == "VALIDATION_ERROR"
