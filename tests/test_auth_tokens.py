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


async def test_missing_wrong_or_foreign_credentials_are_401(any_app: Any) -> None:
    client = any_app.test_client()
    resp = await client.get("/api/auth/me")
    assert resp.status_code == 401
    assert await resp.get_json() == {
        "error": "Missing or invalid authentication",
        "code": "UNAUTHORIZED",
    }
    user = await make_user("ann@example.com")
    headers = await token_for(user)
    forged = headers["Authorization"][:-4] + "AAAA"
    resp = await client.get("/api/auth/me", headers={"Authorization": forged})
    assert resp.status_code == 401
    body = await resp.get_json()
    assert body == {"error": "Invalid, expired or revoked API token", "code": "UNAUTHORIZED"}
    # Not an rgw_ token and no plugin claims it: nobody is authenticated.
    resp = await client.get("/api/auth/me", headers={"Authorization": "Bearer eyJhbGciOi.x.y"})
    assert resp.status_code == 401
    assert (await resp.get_json())["error"] == "Missing or invalid authentication"


async def test_expired_token_is_401(any_app: Any, clock: Any) -> None:
    user = await make_user("ann@example.com")
    headers = await token_for(user, expires_at=clock.now() + timedelta(hours=1))
    client = any_app.test_client()
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    clock.advance(3599)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    clock.advance(1)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_revoked_token_and_deactivated_user_are_401(any_app: Any, clock: Any) -> None:
    user = await make_user("ann@example.com")
    token, row = await create_api_token(user, "ci")
    headers = {"Authorization": f"Bearer {token}"}
    other = await token_for(user)
    client = any_app.test_client()
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    await ApiToken.filter(id=row.id).update(revoked_at=clock.now())
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    # Revoking one token leaves the user's others working, until the user is deactivated.
    assert (await client.get("/api/auth/me", headers=other)).status_code == 200
    user.is_active = False
    await user.save()
    assert (await client.get("/api/auth/me", headers=other)).status_code == 401
