"""The authorization state: single use, ten minutes, bound to team, user and provider,
and a return path that can never become an open redirect. Every failure stores nothing."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from gateway.oauth.models import OAuthConnection, OAuthState
from gateway.testing import (
    FakeOAuthServer,
    follow_authorize,
    provider_plugin,
    query_of,
    seed_admin,
)

A, B = "acme_crm", "beta_crm"


@pytest.fixture
async def server():
    async with FakeOAuthServer() as srv:
        yield srv


def build(make_app, server, db: str = "sqlite"):
    return make_app(
        db=db,
        extra_plugins=[provider_plugin(server, A), provider_plugin(server, B)],
        cors_origins=["https://app.renchi.test"],
    )


@pytest.fixture
async def app2(make_app, server):
    return await build(make_app, server)


@pytest.fixture
async def any_app2(make_app, server, db_kind):
    """For the tests where the database's atomicity is what is being tested."""
    return await build(make_app, server, db_kind)


async def start(client, admin, provider=A, **body) -> str:
    resp = await client.post(
        f"/api/integrations/{provider}/connect", headers=admin.headers, json=body
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return (await resp.get_json())["authorization_url"]


async def error_of(resp, status: int) -> str:
    assert resp.status_code == status, await resp.get_data(as_text=True)
    body = await resp.get_json()
    assert set(body) >= {"error", "code"}
    return body["code"]


async def test_state_is_random_and_stored_hashed(app2):
    client = app2.test_client()
    admin = await seed_admin()
    urls = [await start(client, admin) for _ in range(3)]
    states = [query_of(u)["state"] for u in urls]
    assert len(set(states)) == 3 and all(len(s) >= 43 for s in states)  # >= 256 bits
    rows = await OAuthState.all()
    assert {r.team_id for r in rows} == {admin.team.id}
    assert {r.user_id for r in rows} == {admin.user.id}
    assert not any(s in r.state_hash for r in rows for s in states)


async def test_replayed_callback_is_refused(any_app2, server):
    client = any_app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin))
    assert (await client.get(callback)).status_code == 200
    assert await error_of(await client.get(callback), 400) == "INVALID_STATE"
    assert server.code_calls == 1


async def test_two_simultaneous_callbacks_with_one_state_connect_once(any_app2, server):
    client = any_app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin))
    results = await asyncio.gather(*(client.get(callback) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400, 400]
    assert server.code_calls == 1
    assert await OAuthConnection.filter(team_id=admin.team.id).count() == 1


async def test_expired_state_is_refused_and_not_exchanged(any_app2, server, clock):
    client = any_app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin))
    clock.advance(10 * 60 + 1)
    assert await error_of(await client.get(callback), 400) == "STATE_EXPIRED"
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0


async def test_state_just_inside_ten_minutes_works(app2, clock):
    client = app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin))
    clock.advance(10 * 60 - 1)
    assert (await client.get(callback)).status_code == 200


async def test_state_of_another_provider_is_refused_and_not_consumed(app2, server):
    client = app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin, A))
    forged = callback.replace(f"/{A}/", f"/{B}/")
    assert await error_of(await client.get(forged), 400) == "INVALID_STATE"
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0
    assert (await client.get(callback)).status_code == 200  # the real one still works


async def test_state_of_another_teams_admin_is_refused(any_app2, server):
    client = any_app2.test_client()
    alice = await seed_admin("alice@example.com")
    mallory = await seed_admin("mallory@example.com")  # admin of her own team
    callback = await follow_authorize(await start(client, alice))
    resp = await client.get(callback, headers=mallory.headers)
    assert await error_of(resp, 403) == "STATE_USER_MISMATCH"
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0
    # The connection can only ever land in the team bound to the state.
    assert (await client.get(callback, headers=alice.headers)).status_code == 200
    assert await OAuthConnection.filter(team_id=alice.team.id).count() == 1
    assert await OAuthConnection.filter(team_id=mallory.team.id).count() == 0


async def test_unknown_or_missing_state(app2, server):
    client = app2.test_client()
    await seed_admin()
    for query in ["?code=x", "?code=x&state=", f"?code=x&state={secrets.token_urlsafe(32)}"]:
        resp = await client.get(f"/api/integrations/{A}/callback{query}")
        assert await error_of(resp, 400) == "INVALID_STATE"
    assert server.code_calls == 0


BAD_TARGETS = [
    "https://evil.example/steal",
    "//evil.example/x",
    "/\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "https://gateway.test@evil.example/",
    "https://gateway.test.evil.example/",
    "http://gateway.test/",  # another scheme is another origin
    "/ok\r\nLocation: https://evil.example",
    "settings",
]


async def test_open_redirect_attempts_are_refused(app2):
    client = app2.test_client()
    admin = await seed_admin()
    for target in BAD_TARGETS:
        resp = await client.post(
            f"/api/integrations/{A}/connect", headers=admin.headers, json={"return_to": target}
        )
        assert await error_of(resp, 400) == "VALIDATION_ERROR", target
        # GET (browser flow) refuses the same way, as JSON rather than a redirect.
        resp = await client.get(
            f"/api/integrations/{A}/connect",
            headers=admin.headers,
            query_string={"return_to": target},
        )
        assert await error_of(resp, 400) == "VALIDATION_ERROR", target
    assert await OAuthState.all().count() == 0


async def test_same_origin_return_paths_are_followed(app2):
    client = app2.test_client()
    admin = await seed_admin()
    for target in ["/settings?tab=crm", "https://gateway.test/done", "https://app.renchi.test/x"]:
        callback = await follow_authorize(await start(client, admin, return_to=target))
        resp = await client.get(callback)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith(target)
        assert query_of(resp.headers["Location"])["status"] == "connected"


async def test_provider_error_redirects_with_a_code_and_stores_nothing(app2, server):
    client = app2.test_client()
    admin = await seed_admin()
    server.deny = True
    callback = await follow_authorize(await start(client, admin, return_to="/settings"))
    assert "error=access_denied" in callback
    resp = await client.get(callback)
    assert resp.status_code == 302
    assert query_of(resp.headers["Location"]) == {"integration": A, "error": "PROVIDER_ERROR"}
    assert server.code_calls == 0 and await OAuthConnection.all().count() == 0
    assert await error_of(await client.get(callback), 400) == "INVALID_STATE"  # consumed


async def test_provider_error_without_return_path_is_json(app2, server):
    client = app2.test_client()
    admin = await seed_admin()
    server.deny = True
    callback = await follow_authorize(await start(client, admin))
    assert await error_of(await client.get(callback), 400) == "PROVIDER_ERROR"


async def test_refused_code_exchange_stores_nothing(app2, server):
    client = app2.test_client()
    admin = await seed_admin()
    callback = await follow_authorize(await start(client, admin))
    server.fail_next_token_request(400, {"error": "invalid_grant"})
    assert await error_of(await client.get(callback), 502) == "TOKEN_EXCHANGE_FAILED"
    assert await OAuthConnection.all().count() == 0


async def test_only_team_admins_and_owners_connect(app2):
    client = app2.test_client()
    owner = await seed_admin("owner@example.com", role="owner")
    member = await seed_admin("member@example.com", role="member", team=owner.team)
    assert (
        await client.post(f"/api/integrations/{A}/connect", headers=owner.headers)
    ).status_code == 200
    resp = await client.post(f"/api/integrations/{A}/connect", headers=member.headers)
    assert await error_of(resp, 403) == "FORBIDDEN"
    assert (
        await error_of(await client.post(f"/api/integrations/{A}/connect"), 401) == "UNAUTHORIZED"
    )
    for path in ("status", f"{A}/disconnect"):
        method = client.get if path == "status" else client.post
        assert (
            await method(f"/api/integrations/{path}", headers=member.headers)
        ).status_code == 403
    resp = await client.post("/api/integrations/nope/connect", headers=owner.headers)
    assert await error_of(resp, 404) == "NOT_FOUND"
