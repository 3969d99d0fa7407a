"""OAuth from an app that never started serving: a plugin's own command, or a script
built on ``create_app`` with the database opened by hand. Such an app has no shared
HTTP session (``Gateway.http`` is ``None`` until ``before_serving``); mypy found the
three places that handed that ``None`` to the provider's token, identity and revocation
endpoints as a session. Each must open a session of its own instead of failing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.app import get_gateway
from gateway.oauth import get_access_token
from gateway.oauth.revoke import disconnect
from gateway.testing import FakeOAuthServer, provider_plugin, run_connect, seed_admin

NAME = "acme_crm"


@pytest.fixture
async def server() -> AsyncIterator[FakeOAuthServer]:
    async with FakeOAuthServer() as srv:
        yield srv


@asynccontextmanager
async def command_app(make_app: Any, plugin: tuple[str, object]) -> AsyncIterator[Any]:
    """What a plugin's command does: create the app, open its database, never serve."""
    app = await make_app(extra_plugins=[plugin], start=False)
    gw = get_gateway(app)
    assert gw.http is None
    await gw.db.open()
    try:
        yield app
    finally:
        await gw.db.close()


async def resource_status(server: FakeOAuthServer, token: str) -> int:
    async with ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(server.endpoint("resource"), headers=headers) as resp:
            return resp.status


async def test_a_command_refreshes_an_expired_token(make_app, server, clock):
    plugin = provider_plugin(server, NAME)
    serving = await make_app(extra_plugins=[plugin])
    admin = await seed_admin()
    assert (await run_connect(serving.test_client(), admin, NAME)).status_code == 200
    clock.advance(3600)  # the access token has expired
    async with command_app(make_app, plugin) as app:
        token = await get_access_token(admin.team, NAME, app=app)
        assert get_gateway(app).http is None  # the session was the call's own
    assert server.refresh_calls == 1
    assert await resource_status(server, token) == 200


async def test_a_command_disconnects_and_revokes_at_the_provider(make_app, server):
    plugin = provider_plugin(server, NAME)
    serving = await make_app(extra_plugins=[plugin])
    admin = await seed_admin()
    assert (await run_connect(serving.test_client(), admin, NAME)).status_code == 200
    async with serving.app_context():
        token = await get_access_token(admin.team, NAME)
    async with command_app(make_app, plugin) as app:
        gw = get_gateway(app)
        provider = gw.registry("register_oauth_providers")[NAME]
        result = await disconnect(gw, provider, admin.team.id)
    assert result["revoked"] is True
    assert server.revoked  # the provider was told
    assert await resource_status(server, token) == 401


async def test_a_callback_on_an_app_that_is_not_serving_connects(make_app, server):
    plugin = provider_plugin(server, NAME)
    await make_app(extra_plugins=[plugin])  # migrates the database
    admin = await seed_admin()
    async with command_app(make_app, plugin) as app:
        resp = await run_connect(app.test_client(), admin, NAME)
        assert resp.status_code == 200, await resp.get_data(as_text=True)
        status = await app.test_client().get("/api/integrations/status", headers=admin.headers)
        body = await status.get_json()
    entry = next(i for i in body["integrations"] if i["provider"] == NAME)
    assert entry["status"] == "connected"
    assert entry["account"]["label"]  # the identity endpoint was asked too
    assert server.code_calls == 1
