"""The core's identity plugin: built-in authentication (``Authorization: Bearer rgw_...``
API tokens and the browser session cookie), the auth and team API routes, CORS, and
closing the rate limiter's storage on shutdown."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, Request, current_app

from gateway import cors, ratelimit
from gateway.auth.principal import Principal, bearer_token
from gateway.auth.sessions import COOKIE_NAME, session_principal
from gateway.config import GatewayConfig
from gateway.errors import Forbidden, Unauthorized
from gateway.identity.models import ApiToken
from gateway.identity.tokens import TOKEN_PREFIX, find_active_token
from hookspecs import hookimpl

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _token_principal(token: str) -> Principal:
    clock = current_app.extensions["gateway"].clock
    row = await find_active_token(token, clock.now())
    if row is None:
        raise Unauthorized("Invalid, expired or revoked API token")
    await ApiToken.filter(id=row.id).update(last_used_at=clock.now())
    user = row.user
    return Principal.of_user(user, via="token")


# Last, deliberately: a plugin's authenticator (JWT, an SSO header) is asked before the
# built-in tokens and cookie, whatever order the plugins were registered in.
@hookimpl(trylast=True)
async def authenticate(request: Request, config: GatewayConfig) -> Principal | None:
    """An ``Authorization`` header decides alone: an ``rgw_`` token is ours, any other
    is left to other implementations (JWT...), and a cookie next to it is ignored. Only
    requests without the header fall back to the session cookie."""
    if request.headers.get("Authorization"):
        token = bearer_token(request)
        if token is None or not token.startswith(TOKEN_PREFIX):
            return None
        return await _token_principal(token)
    if COOKIE_NAME not in request.cookies:
        return None
    if request.method not in SAFE_METHODS and not cors.origin_trusted(
        request.headers.get("Origin")
    ):
        # A cookie rides along with cross-site requests; writes must come from us.
        raise Forbidden("Cross-origin request not allowed")
    return await session_principal(current_app._get_current_object(), request)  # type: ignore[attr-defined]


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> list[Blueprint]:
    from gateway.auth.account import bp as account_bp
    from gateway.auth.invitations_api import bp as invitations_bp
    from gateway.auth.routes import bp as auth_bp
    from gateway.auth.routing_api import bp as routing_bp
    from gateway.auth.teams_api import bp as teams_bp

    cors.install(app)
    return [auth_bp, account_bp, teams_bp, invitations_bp, routing_bp]


@hookimpl
async def shutdown(app: Any, config: GatewayConfig) -> None:
    await ratelimit.close(app)
