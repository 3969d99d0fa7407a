"""Invitation routes: team admins invite, list and revoke; the invitee reads and accepts
with the link's token (see :mod:`gateway.identity.invitations` for the rules).

``POST /api/teams/<team_id>/members`` is the same as ``.../invitations``: adding someone
to a team has always been this route, and it now invites.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, g, jsonify, request

from gateway import cors, inputs, ratelimit
from gateway.auth.principal import ADMIN_ROLES, current_principal, team_role_required
from gateway.auth.sessions import issue_cookie
from gateway.contract import PUBLIC, SIGNED_IN, NoContent, api
from gateway.errors import Forbidden, GatewayError, NotFound
from gateway.identity import invitations
from gateway.identity import schemas as s
from gateway.identity import validation as v
from gateway.identity.models import Invitation, User

bp = Blueprint("gateway_invitations", __name__)

# Like login: guessing tokens or passwords costs a hit per request, per client.
ACCEPT_PER_CLIENT = "10/minute"
NO_STORE = {"Cache-Control": "no-store"}


def _gw() -> Any:
    return current_app.extensions["gateway"]


def accept_url(token: str) -> str:
    return f"{_gw().config.gateway.public_url.rstrip('/')}/api/invitations/{token}"


@bp.post("/api/teams/<team_id>/invitations")
@bp.post("/api/teams/<team_id>/members", endpoint="invite_member")
@api(s.InvitationCreated, status=201, auth=SIGNED_IN, request=s.InviteIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def invite(team_id: str) -> Response:
    """Invite an address. The answer holds the one-time link (shown only here)."""
    body = await v.json_body()
    role = v.role(body.get("role", "member"))
    if role == "owner" and g.role != "owner":
        raise Forbidden("Only an owner can grant the owner role")
    row, token = await invitations.invite(
        g.team, body.get("email"), role, g.principal.user_id, _gw().clock.now()
    )
    inviter = await User.get_or_none(id=g.principal.user_id)
    out = {
        **invitations.invitation_json(row, inviter),
        "token": token,
        "accept_url": accept_url(token),
    }
    response = jsonify({"invitation": out})
    response.status_code = 201
    response.headers.update(NO_STORE)
    return response


@bp.get("/api/teams/<team_id>/invitations")
@api(s.InvitationList, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ADMIN_ROLES)
async def list_invitations(team_id: str) -> dict[str, Any]:
    """Pending invitations (never their tokens)."""
    rows = (
        await Invitation.filter(
            team_id=g.team.id, accepted_at=None, expires_at__gt=_gw().clock.now()
        )
        .select_related("invited_by")
        .order_by("id")
    )
    return {"invitations": [invitations.invitation_json(r, r.invited_by) for r in rows]}


@bp.delete("/api/teams/<team_id>/invitations/<invitation_id>")
@api(NoContent, status=204, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ADMIN_ROLES)
async def revoke(team_id: str, invitation_id: str) -> tuple[str, int]:
    deleted = await Invitation.filter(
        id=v.object_id(invitation_id, "invitation_id", Invitation),
        team_id=g.team.id,
        accepted_at=None,
    ).delete()
    if not deleted:
        raise NotFound("Invitation not found")
    return "", 204


async def _throttle() -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    await ratelimit.hit(app, "invitation", ratelimit.client_key(request), ACCEPT_PER_CLIENT)


@bp.get("/api/invitations/<token>")
@api(s.InvitationShown, auth=PUBLIC, errors=(404, 429))
async def show(token: str) -> Response:
    """What the link is for, to whoever holds it."""
    await _throttle()
    row = await invitations.pending(token, _gw().clock.now())
    inviter = await User.get_or_none(id=row.invited_by_id) if row.invited_by_id else None
    body = {
        **invitations.invitation_json(row, inviter),
        "team": {"id": row.team.id, "name": row.team.name},
    }
    response = jsonify({"invitation": body})
    response.headers.update(NO_STORE)
    return response


@bp.post("/api/invitations/<token>/accept")
@api(
    s.Accepted,
    auth=PUBLIC,
    request=s.AcceptIn,
    optional_body=True,
    errors=(401, 403, 404, 409, 429),
)
async def accept(token: str) -> Response:
    """Signed in as the invited address: joins. No account yet: ``{"password", "name"?}``
    creates it, joins, and signs the browser in."""
    await _throttle()
    cors.require_trusted_origin()  # no other site signs a visitor into a new account
    try:
        principal = await current_principal()
    except GatewayError:  # a stale cookie: treated as not signed in
        principal = None
    body = await inputs.json_body(optional=True)  # {} is enough when signed in
    done = await invitations.accept(
        token, principal.user_id if principal else None, body, _gw().clock.now()
    )
    from gateway.identity.service import team_json

    response = jsonify(
        {
            "team": team_json(done.team),
            "role": done.role,
            "user": {"id": done.user.id, "email": done.user.email, "name": done.user.name},
        }
    )
    if done.created:
        issue_cookie(current_app._get_current_object(), response, done.user)  # type: ignore[attr-defined]
    return response
