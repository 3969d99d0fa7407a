"""Helpers for tests that need users, teams and credentials. They go through the same
service functions the API and CLI use (real database, no mocks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.auth.passwords import hash_password
from gateway.auth.tokens import create_api_token
from gateway.identity import service
from gateway.identity.models import Team, User

PASSWORD = "correct horse battery staple"


_HASHES: dict[str, str] = {}


async def make_user(
    email: str, *, password: str | None = PASSWORD, super_admin: bool = False
) -> User:
    user = await service.create_user(email, is_super_admin=super_admin)
    if password is not None:
        # argon2 is slow on purpose; hash each test password once per test run.
        if password not in _HASHES:
            _HASHES[password] = hash_password(password)
        user.password_hash = _HASHES[password]
        await user.save(update_fields=["password_hash"])
    return user


async def make_team(name: str, owner: User | None = None) -> Team:
    return await service.create_team(name, owner)


async def token_for(user: User, expires_at: datetime | None = None) -> dict[str, str]:
    """``Authorization`` headers with a fresh API token of ``user``."""
    token, _row = await create_api_token(user, "test", expires_at)
    return {"Authorization": f"Bearer {token}"}


async def member_headers(team: Team, email: str, role: str) -> dict[str, str]:
    """A new user with ``role`` in ``team``, as bearer headers."""
    user = await make_user(email)
    await service.add_member(team, user, role)
    return await token_for(user)


def session_cookie(response: Any) -> str:
    """The ``gateway_session=...`` pair from a login response's Set-Cookie."""
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0]


async def login(client: Any, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in over HTTP; returns headers carrying the session cookie."""
    resp = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return {"Cookie": session_cookie(resp)}


async def join_by_invitation(
    app: Any, team_id: int, inviter: dict[str, str], email: str, role: str = "member"
) -> int:
    """``inviter`` invites ``email`` over HTTP and the invitee, with no account yet,
    accepts from their own browser (a fresh client) with :data:`PASSWORD`. Returns the
    new user's id."""
    resp = await app.test_client().post(
        f"/api/teams/{team_id}/invitations", json={"email": email, "role": role}, headers=inviter
    )
    assert resp.status_code == 201, await resp.get_data(as_text=True)
    token = (await resp.get_json())["invitation"]["token"]
    resp = await app.test_client().post(
        f"/api/invitations/{token}/accept", json={"password": PASSWORD}
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return (await resp.get_json())["user"]["id"]


def from_ip(ip: str) -> dict[str, Any]:
    """Test-client keyword arguments for a request from ``ip``."""
    return {"scope_base": {"client": (ip, 40000)}}
