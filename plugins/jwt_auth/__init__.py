"""jwt_auth plugin: accept JWTs from an external identity provider.

The gateway can then sit beside an app whose users log in elsewhere: a bearer JWT signed
with a shared HS256 secret or with a key from the provider's JWKS is verified (joserfc),
and its claims name the user, the team and the role in that team. The token alone
decides the team role, so a token for team B cannot act on team A. See
docs/plugins/jwt_auth.md.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, Request, current_app

from gateway import get_gateway, hookimpl
from gateway.auth import Principal, bearer_token
from gateway.config import GatewayConfig
from plugins.jwt_auth import settings
from plugins.jwt_auth.verify import TokenVerifier, looks_like_jwt

EXTENSION = "jwt_auth"


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> None:
    # No routes; this is the first hook that runs while the app is created, so bad
    # settings stop startup here instead of on the first request.
    settings.load(config)


@hookimpl
def startup(app: Quart, config: GatewayConfig) -> None:
    cfg = settings.load(config)
    if cfg is not None:
        app.extensions[EXTENSION] = TokenVerifier(cfg, get_gateway(app).clock)


@hookimpl
async def authenticate(request: Request, config: GatewayConfig) -> Principal | None:
    token = bearer_token(request)
    if token is None or not looks_like_jwt(token):
        return None
    app: Any = current_app
    verifier: TokenVerifier | None = app.extensions.get(EXTENSION)
    if verifier is None:
        return None
    return await verifier.principal(token, get_gateway(app).http)
