"""Events API: super admins see every event (unrouted included), team admins their
team's. Listing is newest first, paginated with an opaque ``cursor`` (the last id)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify, request
from tortoise.transactions import in_transaction

from gateway.auth import ADMIN_ROLES, require_principal, require_super_admin, require_team_role
from gateway.errors import Forbidden, NotFound, ValidationError
from gateway.jobs.models import Job
from gateway.jobs.queue import QueueSettings, jobs_for
from gateway.jobs.worker import notify
from gateway.responses import iso
from gateway.webhooks.models import WebhookEvent

bp = Blueprint("webhook_events", __name__)

MAX_LIMIT = 200


def _int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer", extra={"field": name}) from None


async def team_scope() -> int | None:
    """The team a listing is limited to; ``None`` means all (super admins only)."""
    principal = await require_principal()
    team_id = _int_arg("team_id")
    if principal.is_super_admin:
        return team_id
    _p, team, _role = await require_team_role(ADMIN_ROLES, team_id)
    return team.id


async def check_visible(team_id: int | None) -> None:
    """404 (not 403) for rows of other teams, so their ids are not disclosed."""
    principal = await require_principal()
    if principal.is_super_admin:
        return
    if team_id is None:
        raise NotFound()
    try:
        await require_team_role(ADMIN_ROLES, team_id)
    except Forbidden:
        raise NotFound() from None


def page(query: Any) -> tuple[Any, int]:
    limit = min(max(_int_arg("limit", 50) or 50, 1), MAX_LIMIT)
    cursor = _int_arg("cursor")
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    return query.order_by("-id").limit(limit + 1), limit


def paginated(rows: list[Any], limit: int, render: Any) -> Any:
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {"items": [render(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}
    )


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
async def list_events() -> Any:
    team_id = await team_scope()
    query = WebhookEvent.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    for field in ("type", "status", "source"):
        if request.args.get(field):
            query = query.filter(**{field: request.args[field]})
    query, limit = page(query)
    return paginated(await query, limit, event_json)


async def _event(event_id: int) -> WebhookEvent:
    event = await WebhookEvent.get_or_none(id=event_id)
    if event is None:
        await require_principal()
        raise NotFound("Event not found")
    await check_visible(event.team_id)
    return event


@bp.get("/api/events/<int:event_id>")
async def get_event(event_id: int) -> Any:
    from gateway.jobs.api import job_json

    event = await _event(event_id)
    jobs = await Job.filter(event_id=event.id).order_by("id")
    return jsonify({**event_json(event, payload=True), "jobs": [job_json(j) for j in jobs]})


@bp.post("/api/events/<int:event_id>/replay")
async def replay_event(event_id: int) -> Any:
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
    from gateway.jobs.api import job_json

    return jsonify({"event_id": event.id, "jobs": [job_json(j) for j in created]}), 202


@bp.get("/api/webhooks/stats")
async def webhook_stats() -> Any:
    from gateway.webhooks.ingest import group_commit, stats

    await require_super_admin()
    sources = current_app.extensions["gateway"].registry("register_webhook_sources")
    counters = stats()
    body = {name: dict(counters.get(name, {})) for name in sources}
    body["group_commit"] = dict(group_commit(current_app).counters)
    return jsonify(body)
