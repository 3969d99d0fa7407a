"""Team API: teams and their members.

Who may do what: any signed-in user may create a team (and becomes its owner; a super
admin may name another existing user as owner). Members may read their team; owners and
admins change it; only owners (and super admins) grant, change or remove the owner role.
A team always keeps at least one owner. Nobody is added to a team without consenting:
owners and admins invite (:mod:`gateway.auth.invitations_api`), the invitee accepts.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g

from gateway.auth.principal import ADMIN_ROLES, require_principal, team_role_required
from gateway.contract import SIGNED_IN, NoContent, api
from gateway.errors import Forbidden, NotFound
from gateway.identity import schemas as s
from gateway.identity import service
from gateway.identity import validation as v
from gateway.identity.models import ROLES, Membership, User

bp = Blueprint("gateway_teams", __name__, url_prefix="/api/teams")


@bp.post("")
@api(s.TeamAnswer, status=201, auth=SIGNED_IN, request=s.TeamIn)
async def create_team() -> tuple[dict[str, Any], int]:
    principal = await require_principal()
    body = await v.json_body()
    name = v.text(body, "name")
    tz = v.time_zone(body.get("time_zone", "UTC"))
    days = v.retention_days(body.get("recording_retention_days", 90))
    owner = await principal.user()
    if "owner_email" in body:
        if not principal.is_super_admin:
            raise Forbidden("Only a super admin may create a team for someone else")
        owner = await User.get_or_none(email=v.email(body["owner_email"], "owner_email"))
        if owner is None:
            raise v.invalid("owner_email", "owner_email is not a known user")
    if owner is None:
        raise Forbidden("Only users stored here can own teams")
    team = await service.create_team(name, owner, tz, days)
    return {"team": service.team_json(team), "role": "owner"}, 201


@bp.get("/<team_id>")
@api(s.TeamAnswer, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def get_team(team_id: str) -> dict[str, Any]:
    return {"team": service.team_json(g.team), "role": g.role}


@bp.patch("/<team_id>")
@api(s.TeamAnswer, auth=SIGNED_IN, request=s.TeamPatch, errors=(404,))
@team_role_required(*ADMIN_ROLES)
async def update_team(team_id: str) -> dict[str, Any]:
    body = await v.json_body()
    team = g.team
    fields = []
    if "name" in body:
        team.name = v.text(body, "name")
        fields.append("name")
    if "time_zone" in body:
        team.time_zone = v.time_zone(body["time_zone"])
        fields.append("time_zone")
    if "recording_retention_days" in body:
        team.recording_retention_days = v.retention_days(body["recording_retention_days"])
        fields.append("recording_retention_days")
    if fields:
        await team.save(update_fields=fields)
    return {"team": service.team_json(team)}


@bp.get("/<team_id>/members")
@api(s.MemberList, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def list_members(team_id: str) -> dict[str, Any]:
    rows = await Membership.filter(team_id=g.team.id).select_related("user").order_by("id")
    return {"members": [service.member_json(m) for m in rows]}


@bp.patch("/<team_id>/members/<user_id>")
@api(s.MemberAnswer, auth=SIGNED_IN, request=s.RoleIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def change_member(team_id: str, user_id: str) -> dict[str, Any]:
    body = await v.json_body()
    uid = v.object_id(user_id, "user_id", User)
    role = v.role(body.get("role"))
    await _check_may_touch(uid, role)
    membership = await service.change_member(g.team, uid, role)
    assert membership is not None
    return {"member": service.member_json(membership)}


@bp.delete("/<team_id>/members/<user_id>")
@api(NoContent, status=204, auth=SIGNED_IN, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def remove_member(team_id: str, user_id: str) -> tuple[str, int]:
    uid = v.object_id(user_id, "user_id", User)
    await _check_may_touch(uid, None)
    await service.change_member(g.team, uid, None)
    return "", 204


def _check_may_grant(role: str) -> None:
    if role == "owner" and g.role != "owner":
        raise Forbidden("Only an owner can grant the owner role")


async def _check_may_touch(user_id: int, new_role: str | None) -> None:
    """Admins manage admins and members; owners are managed by owners only."""
    if new_role is not None:
        _check_may_grant(new_role)
    current = await Membership.get_or_none(team_id=g.team.id, user_id=user_id)
    if current is None:
        raise NotFound("Member not found")
    if current.role == "owner" and g.role != "owner":
        raise Forbidden("Only an owner can change or remove an owner")
