"""Recording status callbacks: the row is created or advanced in the ingestion
transaction; fetching the file is a job (:mod:`plugins.twilio_voice.media`)."""

from __future__ import annotations

from gateway.calls import Call, RecordingUpdate, upsert_recording
from gateway.webhooks import ApplyContext, ParsedEvent, WebhookRequest
from plugins.twilio_voice import params as p

EVENT_TYPE = "voice.recording.status"


async def call_team_number(call_sid: str | None) -> str | None:
    """Recording callbacks carry no phone numbers; the call they belong to does."""
    if not call_sid:
        return None
    call = await Call.filter(external_id=call_sid).first()
    if call is None:
        return None
    if (call.direction or "inbound").startswith("outbound"):
        return call.from_number
    return call.to_number


async def call_team_id(req: WebhookRequest) -> int | None:
    call_sid = p.value(req.form, "CallSid")
    call = await Call.filter(external_id=call_sid).first() if call_sid else None
    return call.team_id if call else None


async def parse(req: WebhookRequest) -> list[ParsedEvent]:
    form = req.form
    p.check(form)
    recording_sid = p.sid(form, "RecordingSid", "RE")
    status = p.required(form, "RecordingStatus")
    call_sid = p.value(form, "CallSid")
    if call_sid is not None:
        p.sid(form, "CallSid", "CA")
    return [
        ParsedEvent(
            type=EVENT_TYPE,
            # Twilio may send in-progress, then completed (or absent) for one recording.
            dedup_key=f"{recording_sid}:{status}",
            payload=p.payload(form),
            phone_number=await call_team_number(call_sid),
            occurred_at=p.timestamp(form, "RecordingStartTime") or req.received_at,
        )
    ]


async def apply(ctx: ApplyContext) -> None:
    form = ctx.event.payload
    error_code = form.get("ErrorCode")
    await upsert_recording(
        RecordingUpdate(
            external_id=form["RecordingSid"],
            provider_status=form["RecordingStatus"],
            call_external_id=form.get("CallSid"),
            account_id=form.get("AccountSid"),
            source_url=form.get("RecordingUrl"),
            duration_seconds=p.optional_int(form, "RecordingDuration"),
            channels=p.optional_int(form, "RecordingChannels"),
            error=f"provider_{error_code}" if error_code else form["RecordingStatus"],
            team_id=ctx.team.id if ctx.team is not None else None,
        ),
        using_db=ctx.connection,
    )
