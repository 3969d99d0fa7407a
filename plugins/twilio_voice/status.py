"""Call status callbacks: one request per call-progress event, in any order, sometimes
twice. The call row is advanced in the ingestion transaction (see
:mod:`gateway.calls.status` for the precedence rules)."""

from __future__ import annotations

from gateway.calls.status import CallUpdate, upsert_calls
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest
from plugins.twilio_voice import params as p

EVENT_TYPE = "voice.call.status"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def dedup_key(req: WebhookRequest, call_sid: str, status: str, sequence: int | None) -> str:
    """(CallSid, CallStatus, SequenceNumber) names one progress event exactly, so it
    catches a retry whatever its headers. Without a sequence number (Twilio omits it
    when only ``completed`` is subscribed) Twilio's idempotency token tells retries
    apart; without either, one event per status is all we can know."""
    if sequence is not None:
        return f"{call_sid}:{status}:{sequence}"
    token = (req.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if token:
        return f"{call_sid}:{status}:token:{token[:128]}"
    return f"{call_sid}:{status}"


def parse(req: WebhookRequest) -> list[ParsedEvent]:
    form = req.form
    call_sid = p.sid(form, "CallSid", "CA")
    status = p.required(form, "CallStatus")
    sequence = p.optional_int(form, "SequenceNumber")
    p.optional_int(form, "CallDuration")  # a malformed duration is a 400, not a 500 later
    when = p.timestamp(form) or req.received_at
    return [
        ParsedEvent(
            type=EVENT_TYPE,
            dedup_key=dedup_key(req, call_sid, status, sequence),
            payload=p.payload(form),
            phone_number=p.team_number(form),
            occurred_at=when,
        )
    ]


def call_update(ctx: ApplyContext) -> CallUpdate:
    form = ctx.event.payload
    return CallUpdate(
        external_id=form["CallSid"],
        status=form["CallStatus"],
        sequence=p.optional_int(form, "SequenceNumber"),
        at=ctx.event.occurred_at or ctx.clock.now(),
        duration_seconds=p.optional_int(form, "CallDuration"),
        team_id=ctx.team.id if ctx.team is not None else None,
        account_id=form.get("AccountSid"),
        direction=form.get("Direction"),
        from_number=p.caller(form),
        to_number=p.called(form),
    )


async def apply_batch(ctxs: list[ApplyContext]) -> None:
    """Every status callback stored together advances its call in one bulk update."""
    first = ctxs[0]
    updates = [call_update(ctx) for ctx in ctxs]
    await upsert_calls(updates, using_db=first.connection, now=first.clock.now())
