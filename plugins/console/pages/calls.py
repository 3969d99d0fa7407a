"""Calls: the filtered list, and one call's timeline (audio, transcript, events, jobs,
effects) from ``GET /api/calls`` and ``GET /api/calls/<id>``."""

from __future__ import annotations

from typing import Any

from quart import request

from plugins.console import api
from plugins.console.blueprint import bp
from plugins.console.views import render, signed_in, visitor

FILTERS = ("from", "to", "status", "outcome", "number", "agent")
STATUSES = (
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
)  # fmt: skip
OUTCOMES = ("success", "failure", "unknown")


@bp.get("/calls")
@signed_in
async def calls() -> Any:
    me = visitor()
    filters = {name: request.args.get(name, "") for name in FILTERS}
    items: list[dict[str, Any]] = []
    next_cursor = error = error_field = None
    status = 200
    if me.team is not None:
        answer = await api.call(
            "GET",
            "/api/calls",
            query={**filters, "team_id": me.team["id"], "cursor": request.args.get("cursor")},
        )
        if answer.status == 400:
            error, error_field, status = answer.error, answer.field, 400
        elif not answer.ok:
            raise api.ApiFailed(answer)
        else:
            items, next_cursor = answer.body["items"], answer.body["next_cursor"]
    next_query = {k: v for k, v in filters.items() if v}
    if next_cursor:
        next_query["cursor"] = next_cursor
    return await render(
        "calls.html",
        status,
        calls=items,
        filters=filters,
        statuses=STATUSES,
        outcomes=OUTCOMES,
        next_query=next_query if next_cursor else None,
        error=error,
        error_field=error_field,
    )


@bp.get("/calls/<int:call_id>")
@signed_in
async def call(call_id: int) -> Any:
    timeline = await api.get(f"/api/calls/{call_id}")
    return await render("call.html", t=timeline, c=timeline["call"])
