"""Jobs API: list jobs (filters: status, handler, team_id, event_id) and retry a dead
job. Super admins see all teams, team admins their own."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify

from gateway.contract import SIGNED_IN, TeamHeader, api
from gateway.contract import admin_models as m
from gateway.errors import Conflict, NotFound
from gateway.inputs import parse_id, text_arg
from gateway.jobs.models import Job
from gateway.jobs.queue import retry_dead
from gateway.jobs.worker import notify
from gateway.listing import check_visible, id_arg, page, paginated, team_scope
from gateway.responses import iso

bp = Blueprint("jobs", __name__)


def job_json(j: Job) -> dict[str, Any]:
    return {
        "id": j.id,
        "event_id": j.event_id,
        "team_id": j.team_id,
        "handler": j.handler,
        "status": j.status,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "run_at": iso(j.run_at),
        "lease_until": iso(j.lease_until),
        "last_error": j.last_error,
        # Each failed attempt (error, time, outcome) and each retry of the dead job,
        # oldest first; kept when a dead job is retried.
        "history": j.history or [],
        "created_at": iso(j.created_at),
        "finished_at": iso(j.finished_at),
    }


@bp.get("/api/jobs")
@api(m.JobPage, auth=SIGNED_IN, query=m.JobQuery, headers=TeamHeader, errors=(404,))
async def list_jobs() -> Any:
    team_id = await team_scope()
    query = Job.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    for field in ("status", "handler"):
        value = text_arg(field, Job)
        if value is not None:
            query = query.filter(**{field: value})
    # The event model through Job's foreign key, so jobs import nothing of webhooks.
    event_field: Any = Job._meta.fields_map["event"]
    event_id = id_arg("event_id", event_field.related_model)
    if event_id is not None:
        query = query.filter(event_id=event_id)
    query, limit = page(query)
    return paginated(await query, limit, job_json)


async def _job(raw_id: str) -> Job:
    job = await Job.get_or_none(id=parse_id(raw_id, "job_id", Job))
    if job is None:
        await check_visible(None)
        raise NotFound("Job not found")
    await check_visible(job.team_id)
    return job


@bp.get("/api/jobs/<job_id>")
@api(m.JobOut, auth=SIGNED_IN, errors=(404,))
async def get_job(job_id: str) -> Any:
    return jsonify(job_json(await _job(job_id)))


@bp.post("/api/jobs/<job_id>/retry")
@api(m.JobOut, status=202, auth=SIGNED_IN, errors=(404, 409))
async def retry_job(job_id: str) -> Any:
    """Only dead jobs (see :func:`gateway.jobs.queue.retry_dead`)."""
    job = await _job(job_id)
    updated = await retry_dead(job.id, current_app.extensions["gateway"].clock.now())
    if not updated:
        raise Conflict("Only dead jobs can be retried", extra={"status": job.status})
    notify(current_app)
    return jsonify(job_json(await Job.get(id=job.id))), 202
