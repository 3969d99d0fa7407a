"""Self-service over HTTP: one's own API tokens and one's password, so no shell is needed
after the first super admin. From the user's side and an attacker's."""

from __future__ import annotations

from typing import Any

from gateway.identity.models import ApiToken
from tests.support.identity import PASSWORD, login, make_user, token_for

TOKEN_KEYS = {"id", "prefix", "label", "created_at", "last_used_at", "expires_at", "revoked_at"}


async def test_create_list_use_and_revoke_own_tokens(any_app: Any) -> None:
    await make_user("ann@example.com")
    browser = any_app.test_client()
    cookie = await login(browser, "ann@example.com")
    resp = await browser.post("/api/auth/tokens", json={"label": "ci"}, headers=cookie)
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    created = await resp.get_json()
    token = created["token"]
    assert token.startswith("rgw_") and set(created["api_token"]) == TOKEN_KEYS
    bearer = {"Authorization": f"Bearer {token}"}
    me = await any_app.test_client().get("/api/auth/me", headers=bearer)
    assert (await me.get_json())["user"]["email"] == "ann@example.com"
    listed = await (await browser.get("/api/auth/tokens", headers=cookie)).get_json()
    assert [t["label"] for t in listed["tokens"]] == ["ci"]
    assert all(set(t) == TOKEN_KEYS for t in listed["tokens"])
    assert token not in str(listed)  # shown once, at creation
    tid = created["api_token"]["id"]
    assert (await browser.delete(f"/api/auth/tokens/{tid}", headers=cookie)).status_code == 204
    assert (await browser.delete(f"/api/auth/tokens/{tid}", headers=cookie)).status_code == 204
    assert (await any_app.test_client().get("/api/auth/me", headers=bearer)).status_code == 401


async def test_another_users_token_cannot_be_seen_or_revoked(any_app: Any) -> None:
    ann = await make_user("ann@example.com")
    await token_for(ann)
    (victim,) = await ApiToken.filter(user_id=ann.id)
    eve = await token_for(await make_user("eve@example.com"))
    client = any_app.test_client()
    assert (await client.delete(f"/api/auth/tokens/{victim.id}", headers=eve)).status_code == 404
    listed = await (await client.get("/api/auth/tokens", headers=eve)).get_json()
    assert victim.id not in [t["id"] for t in listed["tokens"]]
    assert (await ApiToken.get(id=victim.id)).revoked_at is None
    assert (await client.get("/api/auth/tokens")).status_code == 401


async def test_token_expiry_and_validation(any_app: Any, clock: Any) -> None:
    ann = await token_for(await make_user("ann@example.com"))
    client = any_app.test_client()
    for bad in ({"expires_in_days": 0}, {"expires_in_days": "7"}, {"label": "x" * 201}):
        resp = await client.post("/api/auth/tokens", json=bad, headers=ann)
        assert resp.status_code == 400, bad
    resp = await client.post("/api/auth/tokens", json={"expires_in_days": 1}, headers=ann)
    short = {"Authorization": f"Bearer {(await resp.get_json())['token']}"}
    assert (await client.get("/api/auth/me", headers=short)).status_code == 200
    clock.advance(2 * 24 * 3600)
    assert (await client.get("/api/auth/me", headers=short)).status_code == 401


async def test_password_change_needs_the_current_one_and_ends_other_sessions(
    any_app: Any,
) -> None:
    await make_user("ann@example.com")
    mine, other = any_app.test_client(), any_app.test_client()
    cookie = await login(mine, "ann@example.com")
    other_cookie = await login(other, "ann@example.com")
    wrong = await mine.post(
        "/api/auth/password",
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
        headers=cookie,
    )
    assert wrong.status_code == 400 and (await wrong.get_json())["field"] == "current_password"
    weak = await mine.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=cookie,
    )
    assert (await weak.get_json())["field"] == "new_password"
    resp = await mine.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=cookie,
    )
    assert resp.status_code == 204
    renewed = {"Cookie": resp.headers["Set-Cookie"].split(";", 1)[0]}
    assert (await mine.get("/api/auth/me", headers=renewed)).status_code == 200
    assert (await other.get("/api/auth/me", headers=other_cookie)).status_code == 401
    await login(any_app.test_client(), "ann@example.com", "a brand new passphrase")
    resp = await any_app.test_client().post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert resp.status_code == 401


async def test_guessing_the_current_password_is_throttled(make_app: Any) -> None:
    app = await make_app()
    ann = await token_for(await make_user("ann@example.com"))
    client = app.test_client()
    codes = [
        (
            await client.post(
                "/api/auth/password",
                json={"current_password": f"guess number {n}", "new_password": "x" * 12},
                headers=ann,
            )
        ).status_code
        for n in range(6)
    ]
    assert codes == [400] * 5 + [429]


async def test_a_first_password_with_an_api_token(make_app: Any) -> None:
    """The setup's super admin may have no password: their API token sets the first
    one, after which they can sign in. No shell needed."""
    app = await make_app()
    root = await make_user("root@example.com", password=None, super_admin=True)
    client = app.test_client()
    resp = await client.post(
        "/api/auth/password",
        json={"new_password": "the first real password"},
        headers=await token_for(root),
    )
    assert resp.status_code == 204
    await login(app.test_client(), "root@example.com", "the first real password")
