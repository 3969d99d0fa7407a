"""Events and jobs: recent deliveries with their outcome, dead jobs with their error
history, and the Retry (a dead job) and Replay (an event: all its handlers) buttons.
Team admins see their team's; ``/api/events`` and ``/api/jobs`` decide."""

from __future__ import annotations

from typing import Any

from quart import request

from plugins.console import api
from plugins.console.blueprint import bp
from plugins.console.views import back, render, signed_in, visitor

PAGE = "/console/jobs"


@bp.get("/jobs")
@signed_in
async def jobs() -> Any:
    me = visitor()
    if me.team is None or not me.is_admin:
        return await render("jobs.html", allowed=False, dead=[], events=[], failed=None)
    team_id = me.team["id"]
    dead = (await api.get("/api/jobs", team_id=team_id, status="dead", limit=50))["items"]
    source = request.args.get("source", "")
    events = (await api.get("/api/events", team_id=team_id, limit=30, source=source))["items"]
    recent = (await api.get("/api/jobs", team_id=team_id, limit=200))["items"]
    by_event: dict[int, list[dict[str, Any]]] = {}
    for job in recent:
        by_event.setdefault(job["event_id"], []).append(job)
    for event in events:
        event["jobs"] = by_event.get(event["id"], [])
    sources = sorted({e["source"] for e in events} | ({source} if source else set()))
    return await render(
        "jobs.html",
        allowed=True,
        source=source,
        sources=sources,
        dead=dead,
        events=events,
        failed=request.args.get("failed"),
    )


@bp.post("/jobs/<int:job_id>/retry")
@signed_in
async def retry(job_id: int) -> Any:
    answer = await api.call("POST", f"/api/jobs/{job_id}/retry")
    if answer.status == 409:
        return back(PAGE, failed="conflict")
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="retried")


@bp.post("/events/<int:event_id>/replay")
@signed_in
async def replay(event_id: int) -> Any:
    answer = await api.call("POST", f"/api/events/{event_id}/replay")
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="replayed")
