"""Binding an authorization to the browser that started it.

The state proves the callback answers an authorization we started; it does not prove
the *browser* at the callback is the one that started it. Without that, an admin can
start a connect, send the provider's URL to someone else, and when that person (signed
in to nothing of ours) consents, their provider account lands in the admin's team. So,
as the usual OAuth client libraries do with their session (authlib and
requests-oauthlib keep the state in it), connect gives the browser a short-lived
cookie holding a random nonce; only its SHA-256 is kept with the state, and the
callback requires the cookie.

The cookie is ``HttpOnly``, ``SameSite=Lax`` (the provider's redirect back is a
top-level GET, which Lax lets through), lives as long as the state, and is named per
provider so two connects in one browser do not overwrite each other. Over HTTPS it has
the ``__Host-`` prefix: a sibling subdomain cannot plant one.

A connect started with an API token has no browser: its answer also holds a one-time
``continue_url`` for the admin to open in a browser where they are signed in to the
gateway as themselves; it binds that browser and goes on to the provider (see
docs/oauth.md for why it must be the same user).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import TYPE_CHECKING

from quart import Request
from werkzeug.sansio.response import Response

from gateway.oauth import common

if TYPE_CHECKING:  # pragma: no cover
    from gateway.app import Gateway

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _secure(gw: Gateway) -> bool:
    return common.public_origin(gw).startswith("https://")


def cookie_name(gw: Gateway, provider: str) -> str:
    suffix = provider if _SAFE.match(provider) else nonce_hash(provider)[:16]
    name = f"gateway_oauth_{suffix}"
    return f"__Host-{name}" if _secure(gw) else name


def attach(gw: Gateway, response: Response, provider: str, nonce: str, max_age: int) -> None:
    """Give the browser receiving ``response`` the nonce of its authorization."""
    response.set_cookie(
        cookie_name(gw, provider),
        nonce,
        max_age=max_age,
        path="/",
        secure=_secure(gw),
        httponly=True,
        samesite="Lax",
    )


def clear(gw: Gateway, response: Response, provider: str) -> None:
    response.delete_cookie(
        cookie_name(gw, provider), path="/", secure=_secure(gw), httponly=True, samesite="Lax"
    )


def presented(gw: Gateway, request: Request, provider: str) -> str | None:
    """The nonce this browser holds for ``provider``, if any."""
    value = request.cookies.get(cookie_name(gw, provider))
    return value if value and len(value) <= 100 else None


def matches(nonce: str | None, expected_hash: str | None) -> bool:
    if not nonce or not expected_hash:
        return False
    return secrets.compare_digest(nonce_hash(nonce), expected_hash)
