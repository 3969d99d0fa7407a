"""What routes inbound traffic to a team: its phone numbers (E.164) and voice-agent ids.
Each is unique across all teams (409 CONFLICT otherwise), since an inbound webhook must
resolve to exactly one team. Members read; owners and admins change."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g

from gateway.auth.principal import ADMIN_ROLES, team_role_required
from gateway.contract import SIGNED_IN, NoContent, api
from gateway.errors import NotFound
from gateway.identity import schemas as s
from gateway.identity import service
from gateway.identity import validation as v
from gateway.identity.models import ROLES, PhoneNumber, VoiceAgent

bp = Blueprint("gateway_team_routing", __name__, url_prefix="/api/teams/<team_id>")


def number_json(row: PhoneNumber) -> dict[str, Any]:
    return {"id": row.id, "number": row.number}


def agent_json(row: VoiceAgent) -> dict[str, Any]:
    return {"id": row.id, "agent_id": row.agent_id, "label": row.label}


@bp.get("/phone-numbers")
@api(s.NumberList, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def list_numbers(team_id: str) -> dict[str, Any]:
    rows = await PhoneNumber.filter(team_id=g.team.id).order_by("number")
    return {"phone_numbers": [number_json(r) for r in rows]}


@bp.post("/phone-numbers")
@api(s.NumberAnswer, status=201, auth=SIGNED_IN, request=s.NumberIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def add_number(team_id: str) -> tuple[dict[str, Any], int]:
    body = await v.json_body()
    row = await service.add_phone_number(g.team, v.phone_number(body.get("number")))
    return {"phone_number": number_json(row)}, 201


@bp.delete("/phone-numbers/<number_id>")
@api(NoContent, status=204, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ADMIN_ROLES)
async def delete_number(team_id: str, number_id: str) -> tuple[str, int]:
    # Scoped to the team: another team's row id is simply "not found" here.
    deleted = await PhoneNumber.filter(
        id=v.object_id(number_id, "number_id", PhoneNumber), team_id=g.team.id
    ).delete()
    if not deleted:
        raise NotFound("Phone number not found")
    return "", 204


@bp.get("/agents")
@api(s.AgentList, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def list_agents(team_id: str) -> dict[str, Any]:
    rows = await VoiceAgent.filter(team_id=g.team.id).order_by("id")
    return {"agents": [agent_json(r) for r in rows]}


@bp.post("/agents")
@api(s.AgentAnswer, status=201, auth=SIGNED_IN, request=s.AgentIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def add_agent(team_id: str) -> tuple[dict[str, Any], int]:
    body = await v.json_body()
    agent_id = v.agent_id(body.get("agent_id"))
    label = v.text(body, "label", required=False)
    row = await service.add_voice_agent(g.team, agent_id, label)
    return {"agent": agent_json(row)}, 201


@bp.delete("/agents/<agent_pk>")
@api(NoContent, status=204, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ADMIN_ROLES)
async def delete_agent(team_id: str, agent_pk: str) -> tuple[str, int]:
    deleted = await VoiceAgent.filter(
        id=v.object_id(agent_pk, "id", VoiceAgent), team_id=g.team.id
    ).delete()
    if not deleted:
        raise NotFound("Agent not found")
    return "", 204
