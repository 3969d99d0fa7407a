"""Browser sessions from the browser's side: login sets a signed HttpOnly cookie,
tampering/expiry/logout/password change end it, cross-site writes are refused, and
password guessing is throttled."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.auth.sessions import MAX_AGE_SECONDS
from gateway.identity import service
from gateway.identity.models import User
from tests.support.identity import PASSWORD, login, make_team, make_user, session_cookie


def client_from(ip: str) -> dict[str, Any]:
    return {"scope_base": {"client": (ip, 50000)}}


def fresh_ip() -> str:
    # Login limits are per client; a fresh address per test keeps tests independent.
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


async def test_login_sets_a_secure_httponly_lax_cookie(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    await make_team("Acme", user)
    client = any_app.test_client()
    resp = await client.post(
        "/api/auth/login",
        json={"email": "Ann@Example.com", "password": PASSWORD},
        **client_from(fresh_ip()),
    )
    assert resp.status_code == 200
    assert (await resp.get_json())["user"]["email"] == "ann@example.com"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("gateway_session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert PASSWORD not in cookie
    me = await client.get("/api/auth/me", headers={"Cookie": session_cookie(resp)})
    assert me.status_code == 200
    body = await me.get_json()
    assert body["via"] == "session" and body["teams"][0]["name"] == "Acme"


async def test_cookie_not_secure_on_plain_http_deployments(make_app: Any) -> None:
    app = await make_app(public_url="http://127.0.0.1:8000")
    await make_user("ann@example.com")
    resp = await app.test_client().post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert "Secure" not in resp.headers["Set-Cookie"]


async def test_wrong_password_and_unknown_user_look_the_same(any_app: Any) -> None:
    await make_user("ann@example.com")
    client = any_app.test_client()
    ip = client_from(fresh_ip())
    wrong = await client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": "nope-nope-nope"}, **ip
    )
    unknown = await client.post(
        "/api/auth/login", json={"email": "bob@example.com", "password": PASSWORD}, **ip
    )
    assert wrong.status_code == unknown.status_code == 401
    assert await wrong.get_json() == await unknown.get_json()
    assert "Set-Cookie" not in wrong.headers


async def test_user_without_password_cannot_log_in(any_app: Any) -> None:
    await make_user("sso@example.com", password=None)
    resp = await any_app.test_client().post(
        "/api/auth/login", json={"email": "sso@example.com", "password": PASSWORD}
    )
    assert resp.status_code == 401


async def test_login_validation_names_the_field(any_app: Any) -> None:
    client = any_app.test_client()
    resp = await client.post("/api/auth/login", json={"email": "x@example.com"})
    assert resp.status_code == 400
    assert await resp.get_json() == {
        "error": "password is required",
        "code": "VALIDATION_ERROR",
        "field": "password",
    }
    resp = await client.post("/api/auth/login", json={"email": "nope", "password": "x"})
    assert (await resp.get_json())["field"] == "email"
    resp = await client.post("/api/auth/login", data="not json")
    assert (await resp.get_json())["field"] == "body"


async def test_tampered_cookie_is_401(any_app: Any) -> None:
    await make_user("ann@example.com")
    await make_user("eve@example.com")
    client = any_app.test_client()
    cookie = (await login(client, "ann@example.com"))["Cookie"]
    name, value = cookie.split("=", 1)
    payload, signature = value.rsplit(".", 1)
    # Change the first character: the last one of unpadded base64 carries unused bits,
    # so changing it can decode to the same signature (this test was flaky that way).
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (f"{name}={payload}.{flipped}", f"{name}=garbage", f"{name}={payload}"):
        resp = await client.get("/api/auth/me", headers={"Cookie": bad})
        assert resp.status_code == 401, bad
        assert (await resp.get_json())["code"] == "UNAUTHORIZED"


async def test_cookie_signed_with_another_secret_is_401(make_app: Any, tmp_path: Any) -> None:
    one = await make_app()
    await make_user("ann@example.com")
    cookie = await login(one.test_client(), "ann@example.com")
    other = await make_app(
        data_dir=str(tmp_path / "other"), session_secret="another-secret-" + "x" * 30
    )
    assert (await other.test_client().get("/api/auth/me", headers=cookie)).status_code == 401


async def test_session_expires_by_the_gateway_clock(any_app: Any, clock: Any) -> None:
    await make_user("ann@example.com")
    client = any_app.test_client()
    cookie = await login(client, "ann@example.com")
    clock.advance(MAX_AGE_SECONDS - 60)
    assert (await client.get("/api/auth/me", headers=cookie)).status_code == 200
    clock.advance(120)
    resp = await client.get("/api/auth/me", headers=cookie)
    assert resp.status_code == 401
    assert (await resp.get_json())["error"] == "Session expired"


async def test_logout_clears_cookie_and_ends_copied_cookies(any_app: Any) -> None:
    await make_user("ann@example.com")
    client = any_app.test_client()
    cookie = await login(client, "ann@example.com")
    resp = await client.post("/api/auth/logout", headers=cookie)
    assert resp.status_code == 204
    cleared = resp.headers["Set-Cookie"]
    assert cleared.startswith("gateway_session=;") or "Max-Age=0" in cleared
    # Someone who copied the cookie before logout cannot use it.
    assert (await client.get("/api/auth/me", headers=cookie)).status_code == 401
    # Logging out without a session is harmless.
    assert (await client.post("/api/auth/logout")).status_code == 204


async def test_password_change_ends_sessions(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    client = any_app.test_client()
    cookie = await login(client, "ann@example.com")
    await service.set_password(await User.get(id=user.id), "a brand new password")
    assert (await client.get("/api/auth/me", headers=cookie)).status_code == 401
    await login(client, "ann@example.com", "a brand new password")


async def test_cross_site_write_with_cookie_is_refused(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    team = await make_team("Acme", user)
    client = any_app.test_client()
    cookie = await login(client, "ann@example.com")
    path = f"/api/teams/{team.id}"
    evil = {**cookie, "Origin": "https://evil.example"}
    resp = await client.patch(path, json={"name": "pwned"}, headers=evil)
    assert resp.status_code == 403
    same = {**cookie, "Origin": "https://gateway.test"}
    resp = await client.patch(path, json={"name": "Acme 2"}, headers=same)
    assert resp.status_code == 200
    # Reads are not state-changing; a foreign origin just gets no CORS headers.
    resp = await client.get(path, headers=evil)
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_login_throttled_per_client(make_app: Any, monkeypatch: Any) -> None:
    # The limiter does not touch the database: one back end is enough. A lower limit
    # than the production 10/minute keeps the number of (slow, argon2) attempts small.
    monkeypatch.setattr("gateway.auth.routes.LOGIN_PER_CLIENT", "3/minute")
    any_app = await make_app()
    await make_user("ann@example.com")
    client = any_app.test_client()
    ip = client_from(fresh_ip())
    codes = []
    for i in range(4):
        # Different e-mails, so only the per-client limit applies.
        resp = await client.post(
            "/api/auth/login", json={"email": f"guess{i}@example.com", "password": "x"}, **ip
        )
        codes.append(resp.status_code)
    assert codes == [401] * 3 + [429]
    assert (await resp.get_json())["code"] == "RATE_LIMITED"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Even the right password is refused while throttled: guessing is not rewarded.
    resp = await client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}, **ip
    )
    assert resp.status_code == 429
    # Another client is not affected.
    other = client_from(fresh_ip())
    ok = await client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}, **other
    )
    assert ok.status_code == 200


async def test_login_throttled_per_email_across_clients(make_app: Any, monkeypatch: Any) -> None:
    # The limiter does not touch the database: one back end is enough.
    monkeypatch.setattr("gateway.auth.routes.LOGIN_PER_EMAIL", "2/minute")
    any_app = await make_app()
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    await make_user(email)
    client = any_app.test_client()
    codes = []
    for _ in range(3):
        resp = await client.post(
            "/api/auth/login",
            json={"email": email, "password": "wrong-wrong"},
            **client_from(fresh_ip()),
        )
        codes.append(resp.status_code)
    assert codes == [401] * 2 + [429]


async def test_old_hash_is_upgraded_on_login(any_app: Any) -> None:
    """A hash made with weaker parameters (and a password from before the length rule)
    still logs in, and is rehashed with today's parameters."""
    from argon2 import PasswordHasher

    user = await make_user("old@example.com", password=None)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash("short")
    await user.save()
    resp = await any_app.test_client().post(
        "/api/auth/login", json={"email": "old@example.com", "password": "short"}
    )
    assert resp.status_code == 200
    upgraded = (await User.get(id=user.id)).password_hash
    assert upgraded != user.password_hash and "m=65536" in upgraded
