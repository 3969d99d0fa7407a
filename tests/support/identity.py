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


def from_ip(ip: str) -> dict[str, Any]:
    """Test-client keyword arguments for a request from ``ip``."""
    return {"scope_base": {"client": (ip, 40000)}}
