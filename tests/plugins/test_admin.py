"""The admin plugin from an operator's side: the one-time super-admin setup (token,
throttling, exactly one winner under real concurrency on SQLite and PostgreSQL) and the
protected database check."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from gateway import hookimpl
from gateway.app import get_gateway
from gateway.auth.principal import Principal
from gateway.errors import StartupError
from gateway.identity.models import ApiToken, User
from plugins.admin.models import SetupRecord
from tests.support.identity import (
    PASSWORD,
    from_ip,
    make_team,
    make_user,
    member_headers,
    token_for,
)

SETUP = "/api/setup-super-admin"
DEBUG = "/api/debug/db"


async def admin_app(make_app: Any, db: str = "sqlite", **kw: Any) -> Any:
    return await make_app(db=db, plugins={"admin": kw.pop("admin", {})}, **kw)


def setup_token(app: Any) -> str:
    return get_gateway(app).secrets.setup_token


async def post_setup(client: Any, token: str | None, body: dict | None = None, **kw: Any) -> Any:
    headers = {"X-Setup-Token": token} if token is not None else {}
    return await client.post(
        SETUP, json=body or {"email": "root@example.com", "name": "Root"}, headers=headers, **kw
    )


# -- setup -------------------------------------------------------------------------


async def test_setup_creates_the_super_admin_and_its_token_once(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    resp = await post_setup(client, setup_token(app))
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.get_json()
    assert body["user"]["email"] == "root@example.com" and body["user"]["is_super_admin"]
    token = body["api_token"]
    assert token.startswith("rgw_")
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert (await me.get_json())["user"]["is_super_admin"] is True

    again = await post_setup(client, setup_token(app), {"email": "second@example.com"})
    assert again.status_code == 409
    assert (await again.get_json()) == {
        "error": "Setup is already complete: a super admin exists",
        "code": "CONFLICT",
    }
    assert await User.all().count() == 1 and await ApiToken.all().count() == 1


async def test_setup_token_in_bearer_header_and_password_allows_login(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    resp = await client.post(
        SETUP,
        json={"email": "Root@Example.com", "password": PASSWORD},
        headers={"Authorization": f"Bearer {setup_token(app)}"},
    )
    assert resp.status_code == 201
    assert (await resp.get_json())["user"]["has_password"] is True
    login = await client.post(
        "/api/auth/login", json={"email": "root@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 500])
async def test_wrong_or_missing_token_is_401_and_changes_nothing(
    make_app: Any, token: str | None
) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    resp = await post_setup(client, token)
    assert resp.status_code == 401
    assert (await resp.get_json())["code"] == "UNAUTHORIZED"
    assert await User.all().count() == 0 and await SetupRecord.all().count() == 0
    # A failed attempt does not close the setup.
    assert (await post_setup(client, setup_token(app))).status_code == 201


async def test_configured_setup_token_is_the_one_accepted(make_app: Any) -> None:
    app = await admin_app(make_app, setup_token="configured-setup-token-123")
    client = app.test_client()
    assert (await post_setup(client, "configured-setup-token-123x")).status_code == 401
    assert (await post_setup(client, "configured-setup-token-123")).status_code == 201


async def test_token_guessing_is_throttled_per_client(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    codes = [
        (await post_setup(client, "guess", **from_ip("10.9.0.1"))).status_code for _ in range(6)
    ]
    assert codes == [401] * 5 + [429]
    # Even the right token waits: otherwise the throttle would not slow guessing down.
    throttled = await post_setup(client, setup_token(app), **from_ip("10.9.0.1"))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert (await throttled.get_json())["code"] == "RATE_LIMITED"
    assert await User.all().count() == 0
    # Another client is counted on its own.
    assert (await post_setup(client, setup_token(app), **from_ip("10.9.0.2"))).status_code == 201


async def test_setup_rate_limit_is_configurable_and_validated(make_app: Any) -> None:
    app = await admin_app(make_app, admin={"setup_rate_limit": "2/minute"})
    client = app.test_client()
    codes = [(await post_setup(client, "guess")).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    with pytest.raises(StartupError, match="plugin 'admin': key 'setup_rate_limit'"):
        await admin_app(make_app, admin={"setup_rate_limit": "lots"})


async def test_after_setup_every_call_is_409_whatever_the_token(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    assert (await post_setup(client, setup_token(app))).status_code == 201
    for token in (None, "wrong", setup_token(app)):
        resp = await post_setup(client, token, {"email": "other@example.com"})
        assert resp.status_code == 409
    assert await User.filter(email="other@example.com").count() == 0


async def test_setup_is_closed_when_a_super_admin_already_exists(make_app: Any) -> None:
    app = await admin_app(make_app)
    await make_user("cli-admin@example.com", super_admin=True)  # e.g. made with the CLI
    resp = await post_setup(app.test_client(), setup_token(app))
    assert resp.status_code == 409
    assert await User.filter(is_super_admin=True).count() == 1


async def test_deleting_the_super_admin_does_not_reopen_setup(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    assert (await post_setup(client, setup_token(app))).status_code == 201
    await User.all().delete()
    assert (await post_setup(client, setup_token(app))).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": "no email"}, "email"),
        ({"email": "root@example.com", "password": "short"}, "password"),
        ({"email": "root@example.com", "password": 12345678901}, "password"),
    ],
)
async def test_bad_body_is_400_and_leaves_setup_open(make_app: Any, body: dict, field: str) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    resp = await post_setup(client, setup_token(app), body)
    assert resp.status_code == 400
    assert (await resp.get_json())["field"] == field
    assert await SetupRecord.all().count() == 0
    assert (await post_setup(client, setup_token(app))).status_code == 201


async def test_setup_rolls_back_when_the_email_is_taken(make_app: Any) -> None:
    app = await admin_app(make_app)
    await make_user("root@example.com")  # a plain user already has the address
    client = app.test_client()
    assert (await post_setup(client, setup_token(app))).status_code == 409
    assert await SetupRecord.all().count() == 0  # the setup stays open
    resp = await post_setup(client, setup_token(app), {"email": "boss@example.com"})
    assert resp.status_code == 201


async def test_ten_racing_setups_exactly_one_wins(make_app: Any, db_kind: str) -> None:
    app = await admin_app(make_app, db=db_kind)
    client = app.test_client()
    token = setup_token(app)
    responses = await asyncio.gather(
        *(
            post_setup(client, token, {"email": f"racer{i}@example.com"}, **from_ip(f"10.7.0.{i}"))
            for i in range(10)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9
    (winner,) = [await r.get_json() for r in responses if r.status_code == 201]
    admins = await User.filter(is_super_admin=True).values_list("email", flat=True)
    assert admins == [winner["user"]["email"]]
    assert await User.all().count() == 1 and await ApiToken.all().count() == 1
    record = await SetupRecord.get()
    assert record.user_id == winner["user"]["id"]


async def test_no_token_in_logs(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = await admin_app(make_app)
    client = app.test_client()
    await post_setup(client, "wrong-guess-value")
    resp = await post_setup(client, setup_token(app))
    api_token = (await resp.get_json())["api_token"]
    text = caplog.text
    assert setup_token(app) not in text and api_token not in text
    assert "wrong-guess-value" not in text
    assert "super admin created" in text


# -- debug/db ----------------------------------------------------------------------


async def test_debug_db_is_404_unless_enabled(make_app: Any) -> None:
    app = await admin_app(make_app)
    client = app.test_client()
    root = await make_user("root@example.com", super_admin=True)
    for headers in ({}, await token_for(root)):
        resp = await client.get(DEBUG, headers=headers)
        assert resp.status_code == 404
        assert (await resp.get_json())["code"] == "NOT_FOUND"


async def test_debug_db_enabled_needs_a_super_admin(make_app: Any) -> None:
    app = await admin_app(make_app, debug_endpoints=True)
    client = app.test_client()
    assert (await client.get(DEBUG)).status_code == 401
    team = await make_team("Acme", await make_user("owner@example.com"))
    resp = await client.get(DEBUG, headers=await member_headers(team, "adm@example.com", "admin"))
    assert resp.status_code == 403
    assert (await resp.get_json())["code"] == "FORBIDDEN"


async def test_debug_db_for_super_admin_reports_without_secrets(
    make_app: Any, db_kind: str
) -> None:
    app = await admin_app(make_app, db=db_kind, debug_endpoints=True)
    client = app.test_client()
    root = await make_user("root@example.com", super_admin=True)
    resp = await client.get(DEBUG, headers=await token_for(root))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.get_json()
    assert body["database"]["ok"] is True
    assert body["database"]["backend"] == db_kind
    assert 0 <= body["database"]["latency_ms"] < 5000
    assert body["migrations"] == {"up_to_date": True, "pending": []}
    raw = await resp.get_data(as_text=True)
    url = get_gateway(app).db.url
    assert url not in raw and url.rsplit("/", 1)[-1].split("?")[0] not in raw
    assert "postgres://" not in raw and "sqlite://" not in raw


async def test_debug_db_reports_pending_migrations(make_app: Any) -> None:
    from tortoise import connections

    app = await admin_app(make_app, debug_endpoints=True)
    root = await make_user("root@example.com", super_admin=True)
    # As if the database had been restored from a backup older than this release.
    await connections.get("default").execute_query(
        "DELETE FROM tortoise_migrations WHERE app = 'admin'"
    )
    resp = await app.test_client().get(DEBUG, headers=await token_for(root))
    assert (await resp.get_json())["migrations"] == {
        "up_to_date": False,
        "pending": ["admin.0001_initial"],
    }


class HeaderSuperAdmin:
    """A stand-in identity provider that needs no database, so the check can be reached
    while the database is down."""

    @hookimpl(tryfirst=True)
    def authenticate(self, request: Any) -> Principal | None:
        if request.headers.get("X-Test-Root") == "yes":
            return Principal(user_id=1, email="root@example.com", is_super_admin=True, via="test")
        return None


async def test_debug_db_is_503_when_the_database_is_gone(make_app: Any, pg_database: str) -> None:
    from tests.conftest import _pg_admin

    name = f"gwdown_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    app = await make_app(
        db="postgres",
        database_url=url,
        debug_endpoints=True,
        plugins={"admin": {}, "rootauth": {}},
        extra_plugins=[("rootauth", HeaderSuperAdmin())],
    )
    client = app.test_client()
    assert (await client.get(DEBUG, headers={"X-Test-Root": "yes"})).status_code == 200
    await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    resp = await client.get(DEBUG, headers={"X-Test-Root": "yes"})
    assert resp.status_code == 503
    body = await resp.get_json()
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert body["database"]["ok"] is False and body["database"]["backend"] == "postgres"
    raw = await resp.get_data(as_text=True)
    assert name not in raw and "127.0.0.1" not in raw
