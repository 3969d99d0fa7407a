"""Self-service for the signed-in user: their own API tokens and their password, so
nobody needs shell access (``gateway tokens``/``gateway users``) after the first super
admin.

- ``POST /api/auth/tokens`` ``{"label"?, "expires_in_days"?}``: a new token, shown once.
- ``GET /api/auth/tokens``: one's own tokens: id, prefix, label and dates, never a token.
- ``DELETE /api/auth/tokens/<id>``: revoke one of one's own (another user's is 404).
- ``POST /api/auth/password`` ``{"current_password", "new_password"}``: change it; every
  other session ends (``session_version``), the caller's own cookie is renewed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Blueprint, Response, current_app, jsonify

from gateway import ratelimit
from gateway.auth.principal import Principal, require_principal
from gateway.auth.sessions import issue_cookie
from gateway.contract import SIGNED_IN, NoContent, api
from gateway.errors import Forbidden, NotFound, Unauthorized
from gateway.identity import schemas as s
from gateway.identity import service
from gateway.identity import validation as v
from gateway.identity.models import ApiToken, User
from gateway.identity.passwords import check_strength, verify_password
from gateway.identity.tokens import create_api_token
from gateway.inputs import max_length
from gateway.responses import iso

bp = Blueprint("gateway_account", __name__, url_prefix="/api/auth")

CHANGE_PER_USER = "5/minute"  # guesses of the current password, like login per e-mail
NO_STORE = {"Cache-Control": "no-store"}


def token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "label": row.label,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
    }


async def _me() -> tuple[Principal, User]:
    principal = await require_principal()
    user = await principal.user()
    if user is None or not user.is_active:
        raise Unauthorized()
    return principal, user


def _gw() -> Any:
    return current_app.extensions["gateway"]


@bp.post("/tokens")
@api(s.TokenCreated, status=201, auth=SIGNED_IN, request=s.TokenIn)
async def create_token() -> Response:
    _principal, user = await _me()
    body = await v.json_body()
    label = v.text(body, "label", max_length=max_length(ApiToken, "label") or 200, required=False)
    days = body.get("expires_in_days")
    expires = None
    if days is not None:
        expires = _gw().clock.now() + timedelta(
            days=v.retention_days(days, "expires_in_days")  # 1..3650, an integer
        )
    token, row = await create_api_token(user, label, expires)
    response = jsonify({"token": token, "api_token": token_json(row)})
    response.status_code = 201
    response.headers.update(NO_STORE)
    return response


@bp.get("/tokens")
@api(s.TokenList, auth=SIGNED_IN)
async def list_tokens() -> dict[str, Any]:
    _principal, user = await _me()
    rows = await ApiToken.filter(user_id=user.id).order_by("id")
    return {"tokens": [token_json(r) for r in rows]}


@bp.delete("/tokens/<token_id>")
@api(NoContent, status=204, auth=SIGNED_IN, errors=(404,))
async def revoke_token(token_id: str) -> tuple[str, int]:
    _principal, user = await _me()
    tid = v.object_id(token_id, "token_id", ApiToken)
    row = await ApiToken.get_or_none(id=tid, user_id=user.id)
    if row is None:  # someone else's token looks like no token at all
        raise NotFound("Token not found")
    if row.revoked_at is None:
        await ApiToken.filter(id=row.id, revoked_at__isnull=True).update(
            revoked_at=_gw().clock.now()
        )
    return "", 204


@bp.post("/password")
@api(NoContent, status=204, auth=SIGNED_IN, request=s.PasswordIn, errors=(429,))
async def change_password() -> Response:
    """With a password already: ``current_password`` must match. Without one (a user
    made by the setup or the CLI with only an API token): only an API token of ours may
    set the first one; an identity provider's JWT may not (a local password would
    outlive the provider's own deprovisioning)."""
    principal, user = await _me()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    await ratelimit.hit(app, "password-change", f"user:{user.id}", CHANGE_PER_USER)
    body = await v.json_body()
    new: Any = body.get("new_password")  # untrusted JSON: check_strength decides
    check_strength(new, "new_password")
    if user.password_hash:
        current = body.get("current_password")
        if not isinstance(current, str) or not verify_password(user.password_hash, current):
            raise v.invalid("current_password", "current_password is wrong")
    elif principal.via != "token":
        raise Forbidden("Set a first password with an API token of this user")
    await service.set_password(user, new)
    response = Response("", status=204)
    if principal.via == "session":
        issue_cookie(app, response, user)  # this browser stays signed in
    return response
