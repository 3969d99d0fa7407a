"""The admin plugin's HTTP routes."""

from __future__ import annotations

import logging

from pydantic import BaseModel
from quart import Blueprint, Response, current_app, jsonify, request

from gateway import get_gateway, ratelimit
from gateway.auth import require_super_admin
from gateway.contract import SETUP_TOKEN, SIGNED_IN, api
from gateway.contract import admin_models as m
from gateway.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized
from gateway.identity import UserOut
from gateway.identity import validation as v
from gateway.sql import is_postgres, is_sqlite
from plugins.admin import settings
from plugins.admin import setup as setup_mod

log = logging.getLogger("gateway.plugins.admin")

bp = Blueprint("admin", __name__)

NO_STORE = {"Cache-Control": "no-store"}


class SetupIn(BaseModel):
    email: str
    name: str | None = None
    password: str | None = None


class Created(BaseModel):
    """The first super admin and their API token (shown here only)."""

    user: UserOut
    api_token: str


@bp.post("/api/setup-super-admin")
@api(Created, status=201, auth=(SETUP_TOKEN,), request=SetupIn, errors=(409, 429))
async def setup_super_admin() -> Response:
    gw = get_gateway()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    limit = settings(gw.config).setup_rate_limit
    # Counted before anything else, so guessing the token costs a hit whatever is sent.
    await ratelimit.hit(app, "setup-super-admin", ratelimit.client_key(request), limit)
    if await setup_mod.setup_done():
        raise Conflict(setup_mod.ALREADY_DONE)
    if not setup_mod.token_matches(setup_mod.presented_token(request), gw.secrets.setup_token):
        raise Unauthorized("Missing or invalid setup token")
    body = await v.json_body()
    email = v.email(body.get("email"))
    name = v.text(body, "name", required=False)
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise v.invalid("password", "password must be a string")
    user, token = await setup_mod.create_super_admin(gw.clock, email, name, password or None)
    response = jsonify({"user": user, "api_token": token})
    response.status_code = 201
    response.headers.update(NO_STORE)
    return response


def _backend(url: str) -> str:
    if is_sqlite(url):
        return "sqlite"
    if is_postgres(url):
        return "postgres"
    return "other"


@bp.get("/api/debug/db")
@api(m.DebugDb, auth=SIGNED_IN, errors=(404,))
async def debug_db() -> Response:
    gw = get_gateway()
    # Switched off, the route answers exactly like a route that does not exist.
    if not gw.config.gateway.debug_endpoints:
        raise NotFound()
    await require_super_admin()
    backend = _backend(gw.db.url)
    try:
        latency_ms = await gw.db.ping()
        pending = await gw.db.pending_migrations()
    except Exception as exc:  # reporting the failure is this endpoint's whole job
        # The class name only: driver messages can carry host and user names.
        log.warning("debug/db: database check failed (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "Database did not answer",
            extra={"database": {"ok": False, "backend": backend, "reason": type(exc).__name__}},
        ) from None
    report = {
        "database": {"ok": True, "backend": backend, "latency_ms": round(latency_ms, 3)},
        "migrations": {"up_to_date": not pending, "pending": pending},
    }
    response = jsonify(report)
    response.headers.update(NO_STORE)
    return response
