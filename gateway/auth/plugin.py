"""Built-in authentication: ``Authorization: Bearer <api token>``."""

from __future__ import annotations

from typing import Any

from quart import Request, current_app

from gateway import ratelimit
from gateway.auth.principal import Principal
from gateway.auth.tokens import TOKEN_PREFIX, find_active_token
from gateway.config import GatewayConfig
from gateway.errors import Unauthorized
from gateway.identity.models import ApiToken
from hookspecs import hookimpl


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@hookimpl
async def authenticate(request: Request, config: GatewayConfig) -> Principal | None:
    token = bearer_token(request)
    if token is None or not token.startswith(TOKEN_PREFIX):
        return None  # not ours: another implementation may know it
    clock = current_app.extensions["gateway"].clock
    row = await find_active_token(token, clock.now())
    if row is None:
        raise Unauthorized("Invalid, expired or revoked API token")
    await ApiToken.filter(id=row.id).update(last_used_at=clock.now())
    user = row.user
    return Principal(
        user_id=user.id, email=user.email, is_super_admin=user.is_super_admin, via="token"
    )


@hookimpl
async def shutdown(app: Any, config: GatewayConfig) -> None:
    await ratelimit.close(app)
