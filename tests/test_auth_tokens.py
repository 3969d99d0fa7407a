"""API tokens (``Authorization: Bearer rgw_...``) from the caller's side, on SQLite and
PostgreSQL: valid, missing, wrong, expired, revoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.auth.tokens import create_api_token
from gateway.identity.models import ApiToken
from tests.support.identity import make_team, make_user, token_for


async def test_valid_token_identifies_the_user(any_app: Any, clock: Any) -> None:
    user = await make_user("ann@example.com")
    await make_team("Acme", user)
    headers = await token_for(user)
    resp = await any_app.test_client().get("/api/auth/me", headers=headers)
    assert resp.status_code == 200
    body = await resp.get_json()
    assert body["user"]["email"] == "ann@example.com"
    assert body["via"] == "token"
    assert body["teams"][0]["role"] == "owner"
    row = await ApiToken.get(user_id=user.id)
    assert row.last_used_at == clock.now()
    assert row.token_hash not in str(body) and headers["Authorization"][7:] not in str(body)


async def test_no_credentials_is_401(any_app: Any) -> None:
    resp = await any_app.test_client().get("/api/auth/me")
    assert resp.status_code == 401
    assert (await resp.get_json())["code"] == "UNAUTHORIZED"


async def test_wrong_token_is_401(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    headers = await token_for(user)
    forged = headers["Authorization"][:-4] + "AAAA"
    resp = await any_app.test_client().get("/api/auth/me", headers={"Authorization": forged})
    assert resp.status_code == 401
    body = await resp.get_json()
    assert body == {"error": "Invalid, expired or revoked API token", "code": "UNAUTHORIZED"}


async def test_expired_token_is_401(any_app: Any, clock: Any) -> None:
    user = await make_user("ann@example.com")
    headers = await token_for(user, expires_at=clock.now() + timedelta(hours=1))
    client = any_app.test_client()
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    clock.advance(3600)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_revoked_token_is_401(any_app: Any, clock: Any) -> None:
    user = await make_user("ann@example.com")
    token, row = await create_api_token(user, "ci")
    headers = {"Authorization": f"Bearer {token}"}
    client = any_app.test_client()
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    await ApiToken.filter(id=row.id).update(revoked_at=clock.now())
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_deactivated_user_token_is_401(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    headers = await token_for(user)
    user.is_active = False
    await user.save()
    resp = await any_app.test_client().get("/api/auth/me", headers=headers)
    assert resp.status_code == 401


async def test_other_bearer_schemes_are_left_to_other_plugins(any_app: Any) -> None:
    # Not an rgw_ token and no plugin claims it: nobody is authenticated.
    resp = await any_app.test_client().get(
        "/api/auth/me", headers={"Authorization": "Bearer eyJhbGciOi.x.y"}
    )
    assert resp.status_code == 401
    assert (await resp.get_json())["error"] == "Missing or invalid authentication"
