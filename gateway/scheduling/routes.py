"""HTTP: ``GET``/``POST /api/cron/<name>`` for schedulers (``Authorization: Bearer
<cron_secret>``) and ``GET /api/cron/runs`` (the run history, for super admins)."""

from __future__ import annotations

import hmac
from typing import Any

from quart import Blueprint, current_app, jsonify, request

from gateway.auth import bearer_token, require_super_admin
from gateway.contract import CRON, SIGNED_IN, api
from gateway.contract import admin_models as m
from gateway.errors import Conflict, InternalError, NotFound, Unauthorized, ValidationError
from gateway.listing import page, paginated
from gateway.responses import iso
from gateway.scheduling.models import FAILED, RUNNING, STATUSES, TaskRun
from gateway.scheduling.runner import runner_of

bp = Blueprint("scheduling", __name__)

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def run_json(run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "task": run.task,
        "window_start": iso(run.window_start),
        "window_end": iso(run.window_end),
        "attempt": run.attempt,
        "status": run.status,
        "forced": run.forced,
        "trigger": run.trigger,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "lease_until": iso(run.lease_until),
        "figures": run.figures,
        "detail": run.detail,
    }


def _check_cron_secret() -> None:
    given = bearer_token(request)
    expected = current_app.extensions["gateway"].secrets.cron_secret
    # Bytes, so a non-ASCII header value is a mismatch rather than a TypeError.
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("Missing or invalid cron secret")


def _flag(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValidationError(f"{name} must be true or false", extra={"field": name})


@bp.route("/api/cron/<name>", methods=["GET", "POST"])
@api(
    m.CronAnswer,
    responses={202: m.CronAnswer},
    auth=(CRON,),
    query=m.CronQuery,
    errors=(404, 409, 500),
)
async def ping(name: str) -> Any:
    """Run the task's current window once: 200 with the outcome when it finishes within
    ``cron_wait_seconds``, else 202 while it goes on in the background; 200
    ``already_ran`` when the window has run (or is running)."""
    _check_cron_secret()
    runner = runner_of(current_app)
    if name not in runner.tasks:
        raise NotFound("No scheduled task with this name")
    forced = _flag("force")
    claim = await runner.trigger(
        name, trigger="http", forced=forced, early_seconds=runner.settings.cron_early_seconds
    )
    run = claim.run
    if not claim.claimed:
        if forced:  # only a run in progress stops a forced one
            raise Conflict("A run of this task is in progress", extra={"run_id": run.id})
        return jsonify(
            {
                "status": "already_ran",
                "run_id": run.id,
                "task": run.task,
                "window_start": iso(run.window_start),
                "outcome": run.status,
            }
        )
    finished = await runner.wait(run.id, runner.settings.cron_wait_seconds)
    if finished is None or finished.status == RUNNING:
        body = {"status": RUNNING, "run_id": run.id, "task": name}
        return jsonify({**body, "window_start": iso(run.window_start)}), 202
    if finished.status == FAILED:
        raise InternalError(
            f"Scheduled task failed (run {run.id}); see GET /api/cron/runs/{run.id}",
            extra={"run_id": run.id, "status": FAILED},
        )
    return jsonify({**run_json(finished), "run_id": run.id})


@bp.get("/api/cron/runs")
@api(m.RunPage, auth=SIGNED_IN, query=m.RunQuery)
async def list_runs() -> Any:
    await require_super_admin()
    query = TaskRun.all()
    if request.args.get("task"):
        query = query.filter(task=request.args["task"])
    status = request.args.get("status")
    if status:
        if status not in STATUSES:
            raise ValidationError(
                f"status must be one of {', '.join(STATUSES)}", extra={"field": "status"}
            )
        query = query.filter(status=status)
    query, limit = page(query)
    return paginated(await query, limit, run_json)


@bp.get("/api/cron/runs/<int:run_id>")
@api(m.RunOut, auth=SIGNED_IN, errors=(404,))
async def get_run(run_id: int) -> Any:
    await require_super_admin()
    run = await TaskRun.get_or_none(id=run_id)
    if run is None:
        raise NotFound("Run not found")
    return jsonify(run_json(run))
