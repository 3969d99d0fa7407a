"""Call status callbacks: one request per call-progress event, in any order, sometimes
twice. The call row is advanced in the ingestion transaction (see
:mod:`gateway.calls.status` for the precedence rules)."""

from __future__ import annotations

import hashlib

from gateway.calls import CallUpdate, upsert_calls
from gateway.webhooks import ApplyContext, ParsedEvent, WebhookRequest
from plugins.twilio_voice import params as p
from plugins.twilio_voice.signature import signed_params

EVENT_TYPE = "voice.call.status"


def dedup_key(req: WebhookRequest, call_sid: str, status: str, sequence: int | None) -> str:
    """The event's identity, from signed data only.

    The signature covers the URL and every form parameter, not the headers: a key
    that took a header (``I-Twilio-Idempotency-Token``, say) would let anyone holding
    one captured callback store it again and again with new header values. So:
    (CallSid, CallStatus, SequenceNumber) when Twilio numbers its callbacks, which
    names one progress event exactly; without a sequence number (Twilio omits it when
    only ``completed`` is subscribed) the hash of everything signed, in the canonical
    form the signature is computed over (a reordered body verifies the same, so it must
    not count as a new event). A retry is byte-for-byte the same request: the same key.
    """
    if sequence is not None:
        return f"{call_sid}:{status}:{sequence}"
    signed = signed_params(req.form) if req.form else req.body.decode("utf-8", "replace")
    digest = hashlib.sha256(f"{req.query_string}\n{signed}".encode()).hexdigest()[:32]
    return f"{call_sid}:{status}:signed:{digest}"


def parse(req: WebhookRequest) -> list[ParsedEvent]:
    form = req.form
    p.check(form)
    call_sid = p.sid(form, "CallSid", "CA")
    status = p.required(form, "CallStatus")
    sequence = p.optional_int(form, "SequenceNumber")
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
        account_id=p.value(form, "AccountSid"),
        direction=p.value(form, "Direction"),
        from_number=p.caller(form),
        to_number=p.called(form),
    )


async def apply_batch(ctxs: list[ApplyContext]) -> None:
    """Every status callback stored together advances its call in one bulk update."""
    first = ctxs[0]
    updates = [call_update(ctx) for ctx in ctxs]
    await upsert_calls(updates, using_db=first.connection, now=first.clock.now())
