"""``OAuthProvider.account_from_token``: what a refresh response says about the account
(an API host that moved with the new token) is stored with the token, and a session
whose base URL comes from the account data sends its retry to the new host. A neutral
provider on the loopback OAuth server; no provider plugin involved."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from gateway.oauth import get_access_token
from gateway.oauth.models import OAuthConnection
from gateway.sync import ProviderSession
from gateway.testing import (
    FakeOAuthServer,
    Grant,
    provider_plugin,
    run_connect,
    seed_admin,
    serve,
)

NAME = "acme_crm"


class MovingServer(FakeOAuthServer):
    """Token responses name the API host the account lives on (``api_host``); a test
    moves it, and can serve the same API on a second port (the new host)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_host = ""
        self.hits: list[tuple[str, int]] = []  # (path, status) per resource request
        self._extra: list[Any] = []

    def token_body(self, grant: Grant, access: str, refresh: str | None) -> dict[str, Any]:
        return {**super().token_body(grant, access, refresh), "api_host": self.api_host}

    async def resource(self, request: Any) -> Any:
        answer = await super().resource(request)
        self.hits.append((request.host, answer.status))
        return answer

    async def second_host(self) -> str:
        runner, port = await serve(self.make_app())
        self._extra.append(runner)
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for runner in self._extra:
            await runner.cleanup()
        await super().stop()


def keep_host(token: Mapping[str, Any], account: Mapping[str, Any]) -> dict[str, Any] | None:
    host = token.get("api_host")
    if not host or host == account.get("api_host"):
        return None
    return {**account, "api_host": host}


@pytest.fixture
async def server():
    async with MovingServer() as srv:
        srv.api_host = srv.url
        yield srv


async def connected(make_app: Any, server: MovingServer, db: str = "sqlite", **fields: Any):
    app = await make_app(db=db, extra_plugins=[provider_plugin(server, NAME, **fields)])
    admin = await seed_admin()
    resp = await run_connect(app.test_client(), admin, NAME)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    # The neutral identity callable keeps no account data; the host is stored as a
    # provider's own identity call would store it.
    await OAuthConnection.filter(team_id=admin.team.id).update(
        account_data={"api_host": server.url, "user": "kept"}
    )
    return app, admin


async def test_a_moved_host_is_stored_with_the_refreshed_token(make_app, server, db_kind):
    app, admin = await connected(make_app, server, db_kind, account_from_token=keep_host)
    new_host = await server.second_host()
    server.api_host = new_host
    async with app.app_context():
        old = await get_access_token(admin.team, NAME)
        fresh = await get_access_token(admin.team, NAME, rejected=old)
    assert fresh != old and server.refresh_calls == 1
    row = await OAuthConnection.get(team_id=admin.team.id)
    assert row.account_data == {"api_host": new_host, "user": "kept"}


async def test_none_keeps_the_account_and_a_failing_hook_keeps_the_new_token(
    make_app, server, caplog
):
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def broken(token: Mapping[str, Any], account: Mapping[str, Any]) -> None:
        calls.append((dict(token), dict(account)))
        raise KeyError("instance")

    app, admin = await connected(make_app, server, account_from_token=broken)
    server.api_host = "http://elsewhere.invalid"
    async with app.app_context():
        old = await get_access_token(admin.team, NAME)
        fresh = await get_access_token(admin.team, NAME, rejected=old)
        assert await get_access_token(admin.team, NAME) == fresh  # stored, no new refresh
    assert server.refresh_calls == 1
    ((token, account),) = calls
    assert token["api_host"] == "http://elsewhere.invalid" and token["access_token"] == fresh
    assert account == {"api_host": server.url, "user": "kept"}
    row = await OAuthConnection.get(team_id=admin.team.id)
    assert row.account_data == {"api_host": server.url, "user": "kept"}
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "KeyError" in text and fresh not in text and old not in text


async def test_without_the_hook_the_account_data_is_never_touched(make_app, server):
    app, admin = await connected(make_app, server)
    server.api_host = "http://elsewhere.invalid"
    async with app.app_context():
        old = await get_access_token(admin.team, NAME)
        await get_access_token(admin.team, NAME, rejected=old)
    row = await OAuthConnection.get(team_id=admin.team.id)
    assert row.account_data["api_host"] == server.url


async def test_a_session_retries_on_the_host_the_refresh_named(make_app, server):
    app, admin = await connected(make_app, server, account_from_token=keep_host)
    new_host = await server.second_host()
    server.api_host = new_host
    server.expire_access_tokens()  # the old host no longer takes the token
    api = ProviderSession(app, admin.team.id, NAME, base_url=lambda account: account["api_host"])
    answer = await api.request("GET", "/api/ping")
    assert answer.status == 200 and server.refresh_calls == 1
    old_netloc, new_netloc = server.url.split("//")[1], new_host.split("//")[1]
    assert server.hits == [(old_netloc, 401), (new_netloc, 200)]
    again = ProviderSession(app, admin.team.id, NAME, base_url=lambda a: a["api_host"])
    await again.request("GET", "/api/ping")  # a new session starts on the new host
    assert server.hits[-1] == (new_netloc, 200)
