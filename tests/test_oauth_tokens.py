"""``get_access_token``: refresh ahead of expiry and after a 401, exactly once under
concurrency, rotation, dead grants and transient failures; tokens unreadable at rest."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from tortoise import connections

from gateway.oauth import NotConnected, ReconnectRequired, TokenUnavailable, get_access_token
from gateway.testing import FakeOAuthServer, provider_plugin, run_connect, seed_admin

NAME = "acme_crm"


async def connected(make_app, server, db="sqlite", **provider_fields):
    app = await make_app(db=db, extra_plugins=[provider_plugin(server, NAME, **provider_fields)])
    admin = await seed_admin()
    resp = await run_connect(app.test_client(), admin, NAME)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return app, admin


async def status_of(app, admin) -> dict[str, Any]:
    resp = await app.test_client().get("/api/integrations/status", headers=admin.headers)
    body = await resp.get_json()
    return next(i for i in body["integrations"] if i["provider"] == NAME)


async def call_resource(server: FakeOAuthServer, token: str) -> int:
    from aiohttp import ClientSession

    async with ClientSession() as http:
        async with http.get(
            server.endpoint("resource"), headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status


@pytest.fixture
async def server():
    async with FakeOAuthServer(refresh_delay=0.05) as srv:
        yield srv


async def test_fifty_concurrent_callers_cause_one_refresh(make_app, server, clock, db_kind):
    app, admin = await connected(make_app, server, db_kind)
    clock.advance(3600)
    async with app.app_context():
        tokens = await asyncio.gather(*(get_access_token(admin.team, NAME) for _ in range(50)))
    assert server.refresh_calls == 1
    assert len(set(tokens)) == 1
    assert await call_resource(server, tokens[0]) == 200


async def test_a_401_refreshes_once_for_every_caller_holding_the_old_token(make_app, server):
    app, admin = await connected(make_app, server)
    async with app.app_context():
        old = await get_access_token(admin.team, NAME)
        server.expire_access_tokens()  # the provider ended the session early
        assert await call_resource(server, old) == 401
        fresh = await asyncio.gather(
            *(get_access_token(admin.team, NAME, rejected=old) for _ in range(20))
        )
        assert server.refresh_calls == 1 and len(set(fresh)) == 1
        assert await call_resource(server, fresh[0]) == 200
        # A late caller reporting the old token gets the new one without a refresh.
        assert await get_access_token(admin.team, NAME, rejected=old) == fresh[0]
    assert server.refresh_calls == 1


async def test_rotated_refresh_token_is_stored(make_app, clock):
    async with FakeOAuthServer(rotate_refresh_tokens=True) as server:
        app, admin = await connected(make_app, server)
        async with app.app_context():
            for _ in range(3):
                clock.advance(3600)
                await get_access_token(admin.team, NAME)
        # Each refresh used the token the previous one returned (an old one would be
        # invalid_grant at a rotating provider).
        used = [r["refresh_token"] for r in server.token_requests if "refresh_token" in r]
        assert len(set(used)) == 3 and server.refresh_calls == 3
        assert (await status_of(app, admin))["status"] == "connected"


async def test_no_expires_in_means_refresh_only_after_a_401(make_app, clock):
    async with FakeOAuthServer(access_ttl=None) as server:
        app, admin = await connected(make_app, server)
        assert (await status_of(app, admin))["access_token_expires_at"] is None
        async with app.app_context():
            token = await get_access_token(admin.team, NAME)
            clock.advance(30 * 24 * 3600)
            assert await get_access_token(admin.team, NAME) == token
            assert server.refresh_calls == 0
            assert await get_access_token(admin.team, NAME, rejected=token) != token
        assert server.refresh_calls == 1


async def test_default_expires_in_from_the_provider_description(make_app, clock):
    async with FakeOAuthServer(access_ttl=None) as server:
        app, admin = await connected(make_app, server, default_expires_in=7200)
        async with app.app_context():
            clock.advance(7200 - 600)
            await get_access_token(admin.team, NAME)
            assert server.refresh_calls == 0
            clock.advance(400)  # within five minutes of the assumed expiry
            await get_access_token(admin.team, NAME)
        assert server.refresh_calls == 1


async def test_invalid_grant_marks_needs_reconnect(make_app, server, clock, db_kind):
    app, admin = await connected(make_app, server, db_kind)
    server.revoke_all_refresh_tokens()
    clock.advance(3600)
    async with app.app_context():
        results = await asyncio.gather(
            *(get_access_token(admin.team, NAME) for _ in range(10)), return_exceptions=True
        )
    assert all(isinstance(r, ReconnectRequired) for r in results)
    assert results[0].provider == NAME and results[0].team_id == admin.team.id
    assert server.refresh_calls == 1
    entry = await status_of(app, admin)
    assert entry["status"] == "needs_reconnect" and "invalid_grant" in entry["last_error"]


def vendor_error(status: int, body: Mapping[str, Any]) -> str | None:
    """A provider whose dead-refresh-token body has no ``error`` key."""
    return "invalid_grant" if body.get("status") == "BAD_REFRESH_TOKEN" else None


async def test_a_providers_own_dead_token_body_marks_needs_reconnect(make_app, clock):
    async with FakeOAuthServer() as server:
        app, admin = await connected(make_app, server, token_error=vendor_error)
        server.fail_next_token_request(
            400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
        )
        clock.advance(3600)
        async with app.app_context():
            with pytest.raises(ReconnectRequired):
                await get_access_token(admin.team, NAME)
        assert (await status_of(app, admin))["status"] == "needs_reconnect"


async def test_transient_failure_keeps_tokens_and_reports_error(make_app, server, clock):
    app, admin = await connected(make_app, server)
    async with app.app_context():
        good = await get_access_token(admin.team, NAME)
        # Early refresh (inside the five-minute window) fails: the still valid token is
        # handed out and the status says something is wrong.
        clock.advance(3600 - 120)
        server.fail_next_token_request(503, "<html>busy</html>")
        assert await get_access_token(admin.team, NAME) == good
        assert (await status_of(app, admin))["status"] == "error"
        # Expired and the provider rate-limits: a typed, retryable error.
        clock.advance(200)
        server.fail_next_token_request(429, {"error": "rate_limited"}, {"Retry-After": "7"})
        with pytest.raises(TokenUnavailable) as info:
            await get_access_token(admin.team, NAME)
        assert info.value.retry_after == 7
        # The provider is back: the stored refresh token still works.
        fresh = await get_access_token(admin.team, NAME)
        assert fresh != good and await call_resource(server, fresh) == 200
    entry = await status_of(app, admin)
    assert entry["status"] == "connected" and entry["last_error"] is None


async def test_unreachable_token_endpoint_is_transient(make_app, clock):
    server = FakeOAuthServer()
    await server.start()
    app, admin = await connected(make_app, server)
    await server.stop()  # nothing listens on the port any more
    clock.advance(3600)
    async with app.app_context():
        with pytest.raises(TokenUnavailable):
            await get_access_token(admin.team, NAME)
    assert (await status_of(app, admin))["status"] == "error"


async def test_not_connected(make_app, server):
    app = await make_app(extra_plugins=[provider_plugin(server, NAME)])
    admin = await seed_admin()
    async with app.app_context():
        with pytest.raises(NotConnected):
            await get_access_token(admin.team.id, NAME)


async def test_raw_rows_hold_no_readable_token(make_app, server, db_kind):
    app, admin = await connected(make_app, server, db_kind)
    # A second connect left pending: its state row holds the PKCE verifier.
    resp = await app.test_client().post(f"/api/integrations/{NAME}/connect", headers=admin.headers)
    assert resp.status_code == 200
    async with app.app_context():
        token = await get_access_token(admin.team, NAME)
    secrets_seen = {token, *server.live_refresh_tokens()}
    db = connections.get("default")
    dump = ""
    for table in ("oauth_connections", "oauth_states"):
        _n, rows = await db.execute_query(f"SELECT * FROM {table}")
        assert rows
        dump += repr([dict(r) for r in rows])
    for secret in secrets_seen:
        assert secret not in dump
    verifiers = [r["code_verifier"] for r in server.token_requests if "code_verifier" in r]
    assert verifiers and not any(v in dump for v in verifiers)
    assert "gAAAAA" in dump  # Fernet ciphertexts are what is there


async def test_no_token_reaches_a_log_line(make_app, server, clock, caplog):
    caplog.set_level("DEBUG")
    app, admin = await connected(make_app, server)
    async with app.app_context():
        clock.advance(3600)
        await get_access_token(admin.team, NAME)
        server.fail_next_token_request(500, {"error": "server_error"})
        clock.advance(3600)
        with pytest.raises(TokenUnavailable):
            await get_access_token(admin.team, NAME)
        server.revoke_all_refresh_tokens()
        with pytest.raises(ReconnectRequired):
            await get_access_token(admin.team, NAME)
    await app.test_client().post(f"/api/integrations/{NAME}/disconnect", headers=admin.headers)
    issued = {r.get("refresh_token") for r in server.token_requests} | set(server.revoked)
    issued |= {r.get("code") for r in server.token_requests}
    issued.discard(None)
    assert issued and any("refresh" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in issued | {server.client_secret}:
        assert secret not in text
