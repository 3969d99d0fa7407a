"""``GET /api/calls/<call_id>/effects``: what the integrations did for a call (the
call timeline's ledger section). Team admins see their team's calls, super admins all."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Blueprint, jsonify

from gateway.calls.analysis import analysis_for_call
from gateway.calls.models import Call
from gateway.contract import SIGNED_IN, api
from gateway.errors import NotFound
from gateway.listing import check_visible
from gateway.sync.ledger import effect_json, effects_for_call


class EffectOut(BaseModel):
    id: int
    subject: str
    plugin: str
    action: str
    status: str
    provider_id: str | None
    url: str | None
    detail: Any = None
    sent: Any = None
    attempts: int
    created_at: str | None
    completed_at: str | None


class CallEffects(BaseModel):
    call_id: int
    analysis_id: int | None
    effects: list[EffectOut]


bp = Blueprint("sync_effects", __name__)


@bp.get("/api/calls/<int:call_id>/effects")
@api(CallEffects, auth=SIGNED_IN, errors=(404,))
async def call_effects(call_id: int) -> Any:
    call = await Call.get_or_none(id=call_id)
    await check_visible(call.team_id if call is not None else None)
    if call is None:
        raise NotFound("Call not found")
    analysis = await analysis_for_call(call)
    rows = await effects_for_call(analysis) if analysis is not None else []
    return jsonify(
        {
            "call_id": call.id,
            "analysis_id": analysis.id if analysis is not None else None,
            "effects": [effect_json(r) for r in rows],
        }
    )
