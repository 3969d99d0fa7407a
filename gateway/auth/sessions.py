"""Browser sessions: a signed, HttpOnly, SameSite=Lax cookie, no server-side store.

The cookie carries ``{"u": user id, "v": session version, "iat": issued at}`` signed with
the gateway's session secret (itsdangerous). Expiry is checked against ``gw.clock``
(itsdangerous' own ``max_age`` reads ``time.time()``, which tests cannot move). Logout and
password changes bump ``User.session_version``, so every older cookie stops working even
if it was copied.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from quart import Quart, Request, Response

from gateway.auth.principal import Principal
from gateway.errors import Unauthorized
from gateway.identity.models import User

COOKIE_NAME = "gateway_session"
MAX_AGE_SECONDS = 14 * 24 * 3600
_SALT = "gateway.session.v1"


def _serializer(app: Quart) -> URLSafeSerializer:
    secret = app.extensions["gateway"].secrets.session_secret
    return URLSafeSerializer(secret, salt=_SALT)


def _now(app: Quart) -> int:
    return int(app.extensions["gateway"].clock.timestamp())


def _secure(app: Quart) -> bool:
    return urlsplit(app.extensions["gateway"].config.gateway.public_url).scheme == "https"


def issue_cookie(app: Quart, response: Response, user: User) -> None:
    """Attach a fresh session cookie for ``user`` to ``response``."""
    value = _serializer(app).dumps({"u": user.id, "v": user.session_version, "iat": _now(app)})
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=MAX_AGE_SECONDS,
        path="/",
        secure=_secure(app),
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(app: Quart, response: Response) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", secure=_secure(app), httponly=True, samesite="Lax"
    )


def _payload(app: Quart, value: str) -> dict[str, Any]:
    try:
        data = _serializer(app).loads(value)
    except BadSignature:
        raise Unauthorized("Invalid session") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), int) for k in ("u", "v", "iat")
    ):
        raise Unauthorized("Invalid session")
    return data


async def session_user(app: Quart, request: Request) -> User | None:
    """The user of the request's session cookie; None without a cookie.

    :raises Unauthorized: for a tampered, expired or invalidated cookie (so the client
        learns to log in again rather than silently acting anonymously).
    """
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    data = _payload(app, value)
    age = _now(app) - data["iat"]
    if age < 0 or age > MAX_AGE_SECONDS:
        raise Unauthorized("Session expired")
    user = await User.get_or_none(id=data["u"])
    if user is None or not user.is_active or user.session_version != data["v"]:
        raise Unauthorized("Session expired")
    return user


async def session_principal(app: Quart, request: Request) -> Principal | None:
    user = await session_user(app, request)
    if user is None:
        return None
    return Principal.of_user(user, via="session")


async def end_all_sessions(user_id: int) -> None:
    """Invalidate every cookie issued to the user so far."""
    from tortoise.expressions import F

    await User.filter(id=user_id).update(session_version=F("session_version") + 1)
