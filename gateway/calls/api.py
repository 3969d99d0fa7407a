"""The calls API: ``GET /api/calls`` (newest first, filtered, cursor pages) and
``GET /api/calls/<id>``, the call timeline: the telephony events in order, the
recordings with a stream URL, the agent's analysis, the personalization the agent was
given, every handler job with its attempts and every effect from the sync ledger.
``GET /api/calls/<id>/recordings/<recording_id>`` streams a recording (with byte
ranges, so an audio element can seek).

Any member of the call's team may read it; super admins read every team's. A call of
another team is 404, as if it did not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request
from tortoise.expressions import Q, Subquery

from gateway import get_gateway
from gateway.auth import require_principal, require_team_role
from gateway.calls.analysis import analysis_for_call
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.calls.schemas import CallPage, CallQuery, Timeline
from gateway.calls.status import TERMINAL
from gateway.contract import SIGNED_IN, Raw, api
from gateway.errors import Forbidden, NotFound
from gateway.identity.models import ROLES, Team
from gateway.inputs import invalid, parse_id, text_arg
from gateway.jobs.api import job_json
from gateway.jobs.models import Job
from gateway.listing import id_arg, page, paginated
from gateway.responses import iso
from gateway.storage import BlobNotFound, RangeNotSatisfiable, recording_storage
from gateway.sync.ledger import analysis_subject, effect_json, event_subject
from gateway.sync.models import Effect
from gateway.webhooks.models import WebhookEvent

bp = Blueprint("calls", __name__)

STATUSES = frozenset({"unknown", "queued", "initiated", "ringing", "in-progress", *TERMINAL})
OUTCOMES = ("success", "failure", "unknown")
MAX_TIMELINE_EVENTS = 500
_NUMBER = re.compile(r"\+?[0-9]{2,20}")


# -- who may see what -------------------------------------------------------------------


async def _team_scope() -> int | None:
    """The team a listing is limited to (any member); ``None``: all (super admins)."""
    principal = await require_principal()
    team_id = id_arg("team_id", Team)
    if principal.is_super_admin:
        return team_id
    _p, team, _role = await require_team_role(ROLES, team_id)
    return team.id


async def _visible_call(raw_id: str) -> Call:
    """The call, or 404 when it does not exist or belongs to a team the caller is not in
    (the same answer, so other teams' ids are not disclosed)."""
    principal = await require_principal()
    call = await Call.get_or_none(id=parse_id(raw_id, "call_id", Call))
    if call is None:
        raise NotFound("Call not found")
    if principal.is_super_admin:
        return call
    team_id = call.team_id
    if team_id is None:
        raise NotFound("Call not found")
    try:
        await require_team_role(ROLES, team_id)
    except Forbidden:
        raise NotFound("Call not found") from None
    return call


# -- filters ---------------------------------------------------------------------------


def _moment(name: str, *, end: bool) -> datetime | None:
    """``from``/``to``: an ISO 8601 date (the whole day, UTC) or date-time (naive is
    UTC)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, f"{name} must be an ISO 8601 date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _choice(name: str, allowed: Any) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise invalid(name, f"{name} must be one of: {', '.join(sorted(allowed))}")
    return raw


def _number() -> str | None:
    raw = request.args.get("number")
    if raw is None or raw.strip() == "":
        return None
    cleaned = re.sub(r"[\s().-]", "", raw)
    if not _NUMBER.fullmatch(cleaned):
        raise invalid("number", "number must be a phone number (digits, optional +)")
    return cleaned


def _filtered(query: Any) -> Any:
    start, end = _moment("from", end=False), _moment("to", end=True)
    if start and end and end < start:
        raise invalid("to", "to must not be before from")
    # A call is placed in time by its first event; a row no event dated yet, by when it
    # was stored.
    if start is not None:
        query = query.filter(
            Q(started_at__gte=start) | Q(started_at__isnull=True, created_at__gte=start)
        )
    if end is not None:
        query = query.filter(
            Q(started_at__lte=end) | Q(started_at__isnull=True, created_at__lte=end)
        )
    status = _choice("status", STATUSES)
    if status is not None:
        query = query.filter(status=status)
    number = _number()
    if number is not None:
        query = query.filter(Q(from_number__contains=number) | Q(to_number__contains=number))
    agent = text_arg("agent", Call, "agent_id")
    outcome = _choice("outcome", OUTCOMES)
    if agent is not None or outcome is not None:
        analysed = _analysed(agent, outcome)
        query = query.filter(analysed | Q(agent_id=agent) if agent is not None else analysed)
    return query


def _analysed(agent: str | None, outcome: str | None) -> Q:
    """Calls whose analysis matches: linked to the call row, or not linked yet (the
    analysis came before the call's first callback) and found by the call's id or its
    conversation's."""
    found = CallAnalysis.all()
    if agent is not None:
        found = found.filter(agent_id=agent)
    if outcome is not None:
        found = found.filter(outcome=outcome)
    unlinked = found.filter(call_id__isnull=True)
    return (
        Q(id__in=Subquery(found.filter(call_id__isnull=False).values("call_id")))
        | Q(external_id__in=Subquery(unlinked.filter(call_sid__isnull=False).values("call_sid")))
        | Q(
            conversation_id__in=Subquery(
                unlinked.filter(conversation_id__isnull=False).values("conversation_id")
            )
        )
    )


# -- rendering -------------------------------------------------------------------------


def call_json(call: Call, analysis: CallAnalysis | None = None) -> dict[str, Any]:
    return {
        "id": call.id,
        "team_id": call.team_id,
        "external_id": call.external_id,
        "direction": call.direction or (analysis.direction if analysis else None),
        "from_number": call.from_number or (analysis.from_number if analysis else None),
        "to_number": call.to_number or (analysis.to_number if analysis else None),
        "status": call.status,
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "agent_id": call.agent_id or (analysis.agent_id if analysis else None),
        "conversation_id": call.conversation_id or (analysis.conversation_id if analysis else None),
        "outcome": analysis.outcome if analysis else None,
        "summary": analysis.summary if analysis else None,
        "created_at": iso(call.created_at),
    }


async def _analyses_of(calls: list[Call]) -> dict[int, CallAnalysis]:
    """The analysis of each listed call, in one query (linked or not yet linked)."""
    if not calls:
        return {}
    by_sid = {c.external_id: c.id for c in calls}
    by_conv = {c.conversation_id: c.id for c in calls if c.conversation_id}
    cond = Q(call_id__in=[c.id for c in calls]) | Q(call_sid__in=list(by_sid))
    if by_conv:
        cond |= Q(conversation_id__in=list(by_conv))
    out: dict[int, CallAnalysis] = {}
    for row in await CallAnalysis.filter(cond).order_by("-id"):
        call_id = (
            row.call_id or by_sid.get(row.call_sid or "") or by_conv.get(row.conversation_id or "")
        )
        if call_id is not None:
            out[call_id] = row
    return out


def _neutral_facts(payload: Mapping[str, Any]) -> tuple[str | None, Any]:
    status = next((payload[k] for k in ("status", "type") if isinstance(payload.get(k), str)), None)
    return status, payload.get("sequence")


def _event_json(event: WebhookEvent, sources: Mapping[str, Any]) -> dict[str, Any]:
    """An event of the timeline; its status and sequence as its webhook source reads its
    own payload (``WebhookSource.timeline``)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    read = getattr(sources.get(event.source), "timeline", None) or _neutral_facts
    status, sequence = read(payload)
    return {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "status": status,
        "sequence": sequence,
        "occurred_at": iso(event.occurred_at),
        "received_at": iso(event.received_at),
    }


def _recording_json(call: Call, rec: Recording) -> dict[str, Any]:
    playable = rec.status == "stored" and bool(rec.storage_key)
    return {
        "id": rec.id,
        "external_id": rec.external_id,
        "status": rec.status,
        "error": rec.error,
        "duration_seconds": rec.duration_seconds,
        "channels": rec.channels,
        "size_bytes": rec.size_bytes,
        "content_type": rec.content_type,
        "sha256": rec.sha256,
        "stored_at": iso(rec.stored_at),
        "expires_at": iso(rec.expires_at),
        "url": f"/api/calls/{call.id}/recordings/{rec.id}" if playable else None,
    }


def _analysis_json(row: CallAnalysis) -> dict[str, Any]:
    return {
        "id": row.id,
        "provider": row.provider,
        "conversation_id": row.conversation_id,
        "agent_id": row.agent_id,
        "status": row.status,
        "outcome": row.outcome,
        "summary": row.summary,
        "transcript": row.transcript or [],
        "evaluation": row.evaluation or {},
        "data_collection": row.data_collection or {},
        "duration_seconds": row.duration_seconds,
        "cost": row.cost,
        "language": row.language,
        "dynamic_variables": row.dynamic_variables or {},
        "started_at": iso(row.started_at),
        "analyzed_at": iso(row.analyzed_at),
        "failure_reason": row.failure_reason,
        "failed_at": iso(row.failed_at),
    }


def _personalization_json(row: CallAnalysis) -> dict[str, Any] | None:
    data = row.personalization
    if not isinstance(data, dict):
        return None
    return {
        "at": iso(row.personalized_at),
        "answered_by": data.get("answered_by"),  # the plugin whose lookup answered
        "contact": data.get("contact"),
        "dynamic_variables": data.get("dynamic_variables") or {},
        "overrides": data.get("overrides") or {},
    }


# -- routes ----------------------------------------------------------------------------


@bp.get("/api/calls")
@api(CallPage, auth=SIGNED_IN, query=CallQuery, errors=(403, 404))
async def list_calls() -> Any:
    team_id = await _team_scope()
    query = Call.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    query, limit = page(_filtered(query))
    rows = await query
    analyses = await _analyses_of(rows[:limit])
    return paginated(rows, limit, lambda c: call_json(c, analyses.get(c.id)))


async def _recordings(call: Call, analysis: CallAnalysis | None) -> list[Recording]:
    cond = Q(call_id=call.id) | Q(call_external_id=call.external_id)
    audio_id = analysis.audio_id if analysis is not None else None
    if audio_id is not None:
        cond |= Q(id=audio_id)
    return await Recording.filter(cond).order_by("id")


async def _events(
    call: Call, analysis: CallAnalysis | None, recordings: list[Recording]
) -> list[dict[str, Any]]:
    """The events about this call, rendered for the timeline in the order they happened:
    every event key of the telephony and agent plugins names the provider's call,
    conversation or recording id."""
    ids = {call.external_id, *(r.external_id for r in recordings)}
    conversation = call.conversation_id or (analysis.conversation_id if analysis else None)
    if conversation:
        ids.add(conversation)
    cond = Q()
    for value in sorted(ids):
        cond |= Q(dedup_key__contains=value)
    query = WebhookEvent.filter(cond)
    team_id = call.team_id
    query = query.filter(team_id=team_id) if team_id is not None else query
    rows = await query.order_by("id").limit(MAX_TIMELINE_EVENTS)
    sources = get_gateway().registry("register_webhook_sources")
    rendered = [(e, _event_json(e, sources)) for e in rows]

    def when(item: tuple[WebhookEvent, dict[str, Any]]) -> tuple[datetime, int, int]:
        e, seq = item[0], item[1]["sequence"]
        try:
            number = int(seq) if seq is not None else 0
        except (TypeError, ValueError):
            number = 0
        return (e.occurred_at or e.received_at, number, e.id)

    return [out for _e, out in sorted(rendered, key=when)]


@bp.get("/api/calls/<call_id>")
@api(Timeline, auth=SIGNED_IN, errors=(404,))
async def get_call(call_id: str) -> Any:
    call = await _visible_call(call_id)
    analysis = await analysis_for_call(call)
    recordings = await _recordings(call, analysis)
    events = await _events(call, analysis, recordings)
    event_ids = [e["id"] for e in events]
    jobs = await Job.filter(event_id__in=event_ids).order_by("id") if event_ids else []
    subjects = [event_subject(i) for i in event_ids]
    if analysis is not None:
        subjects.append(analysis_subject(analysis.id))
    effects = await Effect.filter(subject__in=subjects).order_by("id") if subjects else []
    return jsonify(
        {
            "call": call_json(call, analysis),
            "events": events,
            "recordings": [_recording_json(call, r) for r in recordings],
            "analysis": _analysis_json(analysis) if analysis is not None else None,
            "personalization": _personalization_json(analysis) if analysis else None,
            "jobs": [job_json(j) for j in jobs],
            "effects": [effect_json(e) for e in effects],
        }
    )


@bp.route("/api/calls/<call_id>/recordings/<recording_id>", methods=["GET", "HEAD"])
@api(
    Raw("audio/mpeg", "the recording's bytes (its stored content type); 206 for a Range"),
    auth=SIGNED_IN,
    responses={206: Raw("audio/mpeg", "the requested byte range")},
    errors=(404, 416),
)
async def stream_recording(call_id: str, recording_id: str) -> Response:
    """The recording's bytes, streamed from the store; ``Range: bytes=...`` answers 206
    with that part (416 past the end), so an audio element can seek."""
    call = await _visible_call(call_id)
    rec_id = parse_id(recording_id, "recording_id", Recording)
    analysis = await analysis_for_call(call)
    rec = next((r for r in await _recordings(call, analysis) if r.id == rec_id), None)
    if rec is None or rec.status != "stored" or not rec.storage_key:
        raise NotFound("Recording not found")
    store = recording_storage(current_app)
    info = await store.stat(rec.storage_key)
    if info is None:
        raise NotFound("Recording not found")
    size = info.size
    wanted = request.range
    span = wanted.range_for_length(size) if wanted is not None else None
    if wanted is not None and span is None:
        return _unsatisfiable(size)
    start, stop = span if span is not None else (0, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": rec.content_type or info.content_type or "application/octet-stream",
        "Content-Length": str(stop - start),
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{rec.external_id}"',
    }
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    if request.method == "HEAD" or stop <= start:
        head = Response(b"", status=status, headers=headers)
        head.headers["Content-Length"] = headers["Content-Length"]  # the GET's length
        return head
    try:
        stream = await store.stream(rec.storage_key, start, stop - 1)
    except RangeNotSatisfiable:
        return _unsatisfiable(size)
    except BlobNotFound:
        raise NotFound("Recording not found") from None

    async def body() -> Any:
        async with stream:
            async for chunk in stream:
                yield chunk

    response = Response(body(), status=status, headers=headers)
    response.timeout = None  # a long recording to a slow listener
    return response


def _unsatisfiable(size: int) -> Response:
    response = jsonify({"error": "Range not satisfiable", "code": "RANGE_NOT_SATISFIABLE"})
    response.status_code = 416
    response.headers["Content-Range"] = f"bytes */{size}"
    return response
