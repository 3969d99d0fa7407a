"""``/api/auth``: log in with e-mail and password (sets the session cookie), log out,
and ``me`` (who am I, in which teams)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from gateway import cors, ratelimit
from gateway.auth.principal import require_principal
from gateway.auth.sessions import clear_cookie, end_all_sessions, issue_cookie, session_user
from gateway.contract import PUBLIC, SIGNED_IN, NoContent, api
from gateway.errors import GatewayError, Unauthorized
from gateway.identity import schemas as s
from gateway.identity import validation as v
from gateway.identity.models import Team, User
from gateway.identity.passwords import needs_rehash, rehash, verify_password
from gateway.identity.service import user_json

bp = Blueprint("gateway_auth", __name__, url_prefix="/api/auth")

LOGIN_PER_CLIENT = "10/minute"
LOGIN_PER_EMAIL = "5/minute"


@bp.post("/login")
@api(s.UserAnswer, auth=PUBLIC, request=s.LoginIn, errors=(401, 403, 429))
async def login() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Counted before the body is even parsed: guessing costs a hit whatever it sends.
    await ratelimit.hit(app, "login", ratelimit.client_key(request), LOGIN_PER_CLIENT)
    cors.require_trusted_origin()  # login CSRF: no other site signs a visitor in
    body = await v.json_body()
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise v.invalid("password", "password is required")
    address = v.email(body.get("email"))
    await ratelimit.hit(app, "login-email", address, LOGIN_PER_EMAIL)
    user = await User.get_or_none(email=address)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized("Invalid email or password")
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = rehash(password)
        await user.save(update_fields=["password_hash"])
    response = jsonify({"user": user_json(user)})
    issue_cookie(app, response, user)
    return response


@bp.post("/logout")
@api(NoContent, status=204, auth=PUBLIC)
async def logout() -> Response:
    """Ends every session of the cookie's user (the version bump cannot single one out)
    and clears the cookie. Without a valid cookie it still clears it: logging out is
    always possible."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        user = await session_user(app, request)
    except GatewayError:
        user = None
    if user is not None:
        await end_all_sessions(user.id)
    response = Response("", status=204)
    clear_cookie(app, response)
    return response


@bp.get("/me")
@api(s.MeOut, auth=SIGNED_IN)
async def me() -> dict[str, Any]:
    principal = await require_principal()
    user = await principal.user()
    roles = await principal.roles()  # one query, not one per team
    teams = [
        {"id": team.id, "name": team.name, "role": roles.get(team.id)}
        for team in await Team.filter(id__in=list(roles)).order_by("id")
    ]
    return {
        "user": user_json(user) if user else {"id": principal.user_id, "email": principal.email},
        "via": principal.via,
        "teams": teams,
    }
