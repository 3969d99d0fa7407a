"""Events API: super admins see every event (unrouted included), team admins their
team's. Listing is newest first, paginated with an opaque ``cursor`` (the last id)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify
from tortoise.transactions import in_transaction

from gateway.auth import require_principal, require_super_admin
from gateway.contract import SIGNED_IN, TeamHeader, api
from gateway.contract import admin_models as m
from gateway.errors import NotFound
from gateway.inputs import parse_id, text_arg
from gateway.jobs.api import job_json
from gateway.jobs.models import Job
from gateway.jobs.queue import QueueSettings, jobs_for
from gateway.jobs.worker import notify
from gateway.listing import check_visible, page, paginated, team_scope
from gateway.responses import iso
from gateway.webhooks.models import WebhookEvent

bp = Blueprint("webhook_events", __name__)


def event_json(e: WebhookEvent, *, payload: bool = False) -> dict[str, Any]:
    out = {
        "id": e.id,
        "source": e.source,
        "type": e.type,
        "status": e.status,
        "team_id": e.team_id,
        "dedup_key": e.dedup_key,
        "phone_number": e.phone_number,
        "agent_id": e.agent_id,
        "occurred_at": iso(e.occurred_at),
        "received_at": iso(e.received_at),
    }
    if payload:
        out["payload"] = e.payload
    return out


@bp.get("/api/events")
@api(m.EventPage, auth=SIGNED_IN, query=m.EventQuery, headers=TeamHeader, errors=(404,))
async def list_events() -> Any:
    team_id = await team_scope()
    query = WebhookEvent.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    for field in ("type", "status", "source"):
        value = text_arg(field, WebhookEvent)
        if value is not None:
            query = query.filter(**{field: value})
    query, limit = page(query)
    return paginated(await query, limit, event_json)


async def _event(raw_id: str) -> WebhookEvent:
    event = await WebhookEvent.get_or_none(id=parse_id(raw_id, "event_id", WebhookEvent))
    if event is None:
        await require_principal()
        raise NotFound("Event not found")
    await check_visible(event.team_id)
    return event


@bp.get("/api/events/<event_id>")
@api(m.EventDetail, auth=SIGNED_IN, errors=(404,))
async def get_event(event_id: str) -> Any:
    event = await _event(event_id)
    jobs = await Job.filter(event_id=event.id).order_by("id")
    return jsonify({**event_json(event, payload=True), "jobs": [job_json(j) for j in jobs]})


@bp.post("/api/events/<event_id>/replay")
@api(m.Replayed, status=202, auth=SIGNED_IN, errors=(404,))
async def replay_event(event_id: str) -> Any:
    """Run the event's handlers again: one new job per handler that wants it now."""
    event = await _event(event_id)
    gw = current_app.extensions["gateway"]
    handlers = list(gw.registry("register_event_handlers").values())
    jobs = jobs_for(event, handlers, QueueSettings.from_config(gw.config), gw.clock.now())
    async with in_transaction() as conn:
        if jobs:
            await Job.bulk_create(jobs, using_db=conn)
    notify(current_app)
    created = await Job.filter(event_id=event.id).order_by("-id").limit(len(jobs)) if jobs else []
    return jsonify({"event_id": event.id, "jobs": [job_json(j) for j in created]}), 202


@bp.get("/api/webhooks/stats")
@api(m.WebhookStats, auth=SIGNED_IN)
async def webhook_stats() -> Any:
    from gateway.webhooks.ingest import group_commit, stats

    await require_super_admin()
    sources = current_app.extensions["gateway"].registry("register_webhook_sources")
    counters = stats()
    body = {name: dict(counters.get(name, {})) for name in sources}
    body["group_commit"] = dict(group_commit(current_app).counters)
    return jsonify(body)
