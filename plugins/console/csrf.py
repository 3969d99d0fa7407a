"""CSRF protection for every form post: a random token in an HttpOnly, SameSite=Strict
cookie that each form repeats in a hidden field (another site can neither read the
cookie nor set it), and a browser's ``Origin``, when sent, must be this host."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from quart import Response, g, request

from gateway import get_gateway
from gateway.errors import Forbidden
from plugins.console.blueprint import bp

COOKIE = "console_csrf"
FIELD = "csrf_token"


def secure_cookies() -> bool:
    """Only over https when the gateway is served over https (its public URL), also
    behind a proxy that ends TLS before us."""
    public_url = get_gateway().config.gateway.public_url
    return request.scheme == "https" or str(public_url).startswith("https://")


def token() -> str:
    """The visitor's token (a new one is set on the response when they had none)."""
    current = getattr(g, "console_csrf", None)
    if current is None:
        current = request.cookies.get(COOKIE) or ""
        if len(current) < 32:
            current = secrets.token_urlsafe(32)
            g.console_csrf_new = True
        g.console_csrf = current
    return current


def _same_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in {"http", "https"} and parts.netloc.lower() == request.host.lower()


@bp.before_request
async def check_form_posts() -> None:
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and not _same_origin(origin):
        raise Forbidden("Cross-origin form post refused")
    form = await request.form
    sent, expected = form.get(FIELD, ""), request.cookies.get(COOKIE, "")
    if len(expected) < 32 or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("The form expired; reload the page and try again")


@bp.after_request
async def set_cookie(response: Response) -> Response:
    if getattr(g, "console_csrf_new", False):
        response.set_cookie(
            COOKIE,
            g.console_csrf,
            path="/console",
            httponly=True,
            samesite="Strict",
            secure=secure_cookies(),
        )
    return response
