"""``post_call_transcription`` and ``call_initiation_failure`` into the neutral call
analysis (:mod:`gateway.calls.analysis`), and the neutral events emitted with them.

The payload shapes are ElevenLabs' post-call webhook
(https://elevenlabs.io/docs/eleven-agents/workflows/post-call-webhooks), which matches
the "get conversation" API response
(https://elevenlabs.io/docs/api-reference/conversations/get). Every field is read
leniently: a field that is missing, of another type or too long for its column is
treated as "not said" (``None``), never as an error, because ElevenLabs adds and changes
fields and a 4xx is never retried. Only a transcription without a ``conversation_id`` is
refused (by the parser): it could neither be deduplicated nor joined to anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.calls import (
    AnalysisUpdate,
    Call,
    CallAnalysis,
    InitiationFailure,
    Recording,
    TranscriptTurn,
    analyzed_event,
    initiation_failed_event,
    record_initiation_failure,
    upsert_analysis,
)
from gateway.webhooks import ApplyContext

PROVIDER = "elevenlabs"
TRANSCRIPTION = "post_call_transcription"
INITIATION_FAILURE = "call_initiation_failure"


def text(value: Any, max_length: int) -> str | None:
    """A non-empty string that fits its column, else ``None``."""
    if isinstance(value, str) and 0 < len(value) <= max_length:
        return value
    return None


def number(value: Any) -> float | None:
    """An int or float (a bool is not a number here), else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def integer(value: Any) -> int | None:
    value = number(value)
    return int(value) if value is not None else None


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def unix_time(value: Any) -> datetime | None:
    seconds = number(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _turns(transcript: Any) -> list[TranscriptTurn]:
    """The spoken turns; tool calls and other extras of a turn are not kept."""
    turns: list[TranscriptTurn] = []
    for turn in transcript if isinstance(transcript, list) else []:
        if not isinstance(turn, dict):
            continue
        message = turn.get("message")
        turns.append(
            TranscriptTurn(
                role=text(turn.get("role"), 32) or "unknown",
                message=message if isinstance(message, str) else None,
                offset_seconds=number(turn.get("time_in_call_secs")),
            )
        )
    return turns


def _results(value: Any) -> dict[str, Any] | None:
    """``{id: {...}}`` as sent (evaluation criteria, data collection), objects only."""
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, dict)} or None


def _numbers(phone: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """``(direction, from, to)`` of a ``metadata.phone_call``: the agent's number is
    the called one on an inbound call and the caller on an outbound one."""
    direction = text(phone.get("direction"), 16)
    ours, theirs = text(phone.get("agent_number"), 64), text(phone.get("external_number"), 64)
    if direction == "outbound":
        return direction, ours, theirs
    return direction, theirs, ours


def analysis_update(data: dict[str, Any], team_id: int | None) -> AnalysisUpdate:
    """The neutral update of a ``post_call_transcription``'s ``data``."""
    meta = obj(data.get("metadata"))
    phone = obj(meta.get("phone_call"))
    analysis = obj(data.get("analysis"))
    client = obj(data.get("conversation_initiation_client_data"))
    direction, from_number, to_number = _numbers(phone)
    outcome = analysis.get("call_successful")
    variables = client.get("dynamic_variables")
    return AnalysisUpdate(
        conversation_id=data["conversation_id"],
        call_sid=text(phone.get("call_sid"), 64),
        provider=PROVIDER,
        team_id=team_id,
        agent_id=text(data.get("agent_id"), 128),
        status=text(data.get("status"), 32),
        direction=direction,
        from_number=from_number,
        to_number=to_number,
        transcript=_turns(data.get("transcript")),
        summary=analysis.get("transcript_summary")
        if isinstance(analysis.get("transcript_summary"), str)
        else None,
        # A string enum (success | failure | unknown); anything else reads "unknown".
        outcome=outcome if isinstance(outcome, str) else None,
        evaluation=_results(analysis.get("evaluation_criteria_results")),
        data_collection=_results(analysis.get("data_collection_results")),
        duration_seconds=integer(meta.get("call_duration_secs")),
        cost=number(meta.get("cost")),
        language=text(meta.get("main_language"), 32),
        dynamic_variables=variables if isinstance(variables, dict) else None,
        started_at=unix_time(meta.get("start_time_unix_secs")),
    )


async def _link_audio_to_call(row: CallAnalysis, conn: Any) -> None:
    """Audio that came before the transcript could not know its call: now it can."""
    audio_id, call_id = row.audio_id, row.call_id
    if audio_id is None or call_id is None:
        return
    call = await Call.filter(id=call_id).using_db(conn).first()
    if call is None:
        return
    await (
        Recording.filter(id=audio_id, call_id=None)
        .using_db(conn)
        .update(call_id=call.id, call_external_id=call.external_id)
    )
    if call.team_id is not None:
        await (
            Recording.filter(id=audio_id, team_id=None).using_db(conn).update(team_id=call.team_id)
        )


async def apply_transcription(ctx: ApplyContext) -> None:
    """The analysis, and ``voice.call.analyzed`` in the same transaction. The event's
    team is the analysis's: the agent's, else the one of the call it was joined to."""
    conn, data = ctx.connection, ctx.event.payload["data"]
    team_id = ctx.team.id if ctx.team is not None else None
    update = analysis_update(data, team_id)
    row = await upsert_analysis(update, using_db=conn, now=ctx.clock.now())
    await _link_audio_to_call(row, conn)
    payload = await analyzed_event(row, using_db=conn)
    await ctx.emit(payload, team_id=row.team_id)


def initiation_failure(
    data: dict[str, Any], team_id: int | None, at: datetime
) -> InitiationFailure:
    """The neutral failure of a ``call_initiation_failure``'s ``data``. The telephony
    provider's own request is in ``metadata.body`` (Twilio: ``CallSid``, ``From``,
    ``To``, ``Direction``); the reason is kept exactly as sent."""
    meta = obj(data.get("metadata"))
    body = obj(meta.get("body"))
    reason = data.get("failure_reason")
    direction = text(body.get("Direction"), 32)
    client = obj(data.get("conversation_initiation_client_data"))
    variables = client.get("dynamic_variables")
    return InitiationFailure(
        failure_reason=reason if isinstance(reason, str) and reason else "unknown",
        at=at,
        conversation_id=text(data.get("conversation_id"), 128),
        call_sid=text(body.get("CallSid"), 64) or text(meta.get("call_sid"), 64),
        provider=PROVIDER,
        team_id=team_id,
        agent_id=text(data.get("agent_id"), 128),
        # An agent that could not start a call was placing it (outbound-api, ...).
        direction=("outbound" if direction.startswith("outbound") else "inbound")
        if direction
        else "outbound",
        from_number=text(body.get("From"), 64),
        to_number=text(body.get("To"), 64),
        dynamic_variables=variables if isinstance(variables, dict) else None,
    )


async def apply_initiation_failure(ctx: ApplyContext) -> None:
    """The failure on the call's analysis row, and ``voice.call.initiation_failed``."""
    conn, data = ctx.connection, ctx.event.payload.get("data")
    team_id = ctx.team.id if ctx.team is not None else None
    now = ctx.clock.now()
    failure = initiation_failure(obj(data), team_id, ctx.event.occurred_at or now)
    row = await record_initiation_failure(failure, using_db=conn, now=now)
    payload = await initiation_failed_event(row, using_db=conn)
    await ctx.emit(payload, team_id=row.team_id)
