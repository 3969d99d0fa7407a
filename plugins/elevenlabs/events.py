"""Parsing the main webhook: one envelope ``{"type", "event_timestamp", "data"}`` per
request, one event per request, deduplicated on (conversation id, type).

The delivery itself is stored under ElevenLabs' own type (``elevenlabs.<type>``, the
envelope as payload; for audio, where the MP3 went), and its ``apply`` fills the
neutral call analysis and emits the neutral event handlers subscribe to, in the same
transaction:

- ``post_call_transcription`` -> the analysis, ``voice.call.analyzed``
  (:mod:`plugins.elevenlabs.analysis`);
- ``call_initiation_failure`` -> the failure, ``voice.call.initiation_failed``;
- ``post_call_audio`` -> the recording row, the analysis points at it,
  ``voice.call.audio_stored`` (:mod:`plugins.elevenlabs.audio`);
- any type we do not know yet -> stored as ``voice.agent.event_received`` with the
  envelope, so nothing is lost; the sender gets its 200.

:func:`parse_envelope` is also what the reconciliation feeds the conversations it
fetched through, so a reconciled conversation and its webhook deduplicate each other.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from gateway.errors import PayloadTooLarge, ValidationError
from gateway.webhooks import ApplyContext, ParsedEvent, TooLarge, WebhookRequest, scan_json_file
from plugins.elevenlabs import analysis, audio
from plugins.elevenlabs.settings import ElevenLabsSettings

# The deliveries, as ElevenLabs sent them (the record; handlers subscribe to the neutral
# events their apply emits, see docs/events.md).
TRANSCRIPTION_TYPE = "elevenlabs.post_call_transcription"
INITIATION_FAILURE_TYPE = "elevenlabs.call_initiation_failure"
AUDIO_TYPE = "elevenlabs.post_call_audio"
# ElevenLabs' "type" -> the delivery's event type. Types not listed become UNKNOWN_TYPE.
EVENT_TYPES = {
    audio.PROVIDER_TYPE: AUDIO_TYPE,
    analysis.TRANSCRIPTION: TRANSCRIPTION_TYPE,
    analysis.INITIATION_FAILURE: INITIATION_FAILURE_TYPE,
}
UNKNOWN_TYPE = "voice.agent.event_received"
_MAX_ID = 128  # the event table's agent_id column


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID else None


def occurred_at(envelope: dict[str, Any], fallback: datetime | None) -> datetime | None:
    """``event_timestamp`` (Unix seconds; a number in the post-call docs, a string in
    the general webhook docs), or when we received it."""
    value = envelope.get("event_timestamp")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return fallback


def dedup_key(kind: str, conversation_id: str | None, envelope: dict[str, Any]) -> str:
    """(conversation id, type); an event without a conversation id (some initiation
    failures) is identified by its content."""
    if conversation_id:
        return f"{conversation_id}:{kind}"
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
    return f"{kind}:sha256:{hashlib.sha256(canonical).hexdigest()}"


class Parser:
    """``WebhookSource.parse``."""

    def __init__(self, settings: ElevenLabsSettings) -> None:
        self.settings = settings

    async def __call__(self, req: WebhookRequest) -> list[ParsedEvent]:
        assert req.spool is not None  # the source is a streaming one
        try:
            scanned = await asyncio.to_thread(
                scan_json_file, req.spool.path, audio.AUDIO_PATHS, self.settings.json_max_bytes
            )
        except TooLarge:
            raise PayloadTooLarge("The JSON around the audio is too large") from None
        except ValueError:
            raise ValidationError("The body is not JSON") from None
        envelope = scanned.document
        if not (isinstance(envelope, dict) and envelope.get("type") == audio.PROVIDER_TYPE):
            return [parse_envelope(envelope, req.received_at)]
        data = envelope.get("data")
        data = data if isinstance(data, dict) else {}
        conversation_id = _text(data.get("conversation_id"))
        if conversation_id is None:
            raise ValidationError("post_call_audio without a conversation_id")
        payload = await audio.store(req, data, scanned.spans, conversation_id)
        return [parse_envelope(envelope, req.received_at, payload=payload)]


def parse_envelope(
    envelope: Any, received_at: datetime | None, *, payload: dict[str, Any] | None = None
) -> ParsedEvent:
    """The event of one envelope: type, dedup key, routing, payload (the envelope
    itself unless given).

    :raises ValidationError: not an object with a ``type``, or a transcription without
        a ``conversation_id`` (nothing could be stored for it).
    """
    if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
        raise ValidationError("Expected a JSON object with a 'type'")
    kind = envelope["type"]
    data = envelope.get("data")
    if not isinstance(data, dict):
        if kind == analysis.TRANSCRIPTION:
            raise ValidationError("post_call_transcription without a 'data' object")
        data = {}
    conversation_id = _text(data.get("conversation_id"))
    if kind == analysis.TRANSCRIPTION and conversation_id is None:
        raise ValidationError("post_call_transcription without a conversation_id")
    return ParsedEvent(
        type=EVENT_TYPES.get(kind, UNKNOWN_TYPE),
        dedup_key=dedup_key(kind, conversation_id, envelope),
        payload=payload if payload is not None else envelope,
        agent_id=_text(data.get("agent_id")),
        occurred_at=occurred_at(envelope, received_at),
    )


class Applier:
    """``WebhookSource.apply``: the state change of each delivery type (see the module
    docstring); unknown types change nothing."""

    def __init__(self, settings: ElevenLabsSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: ApplyContext) -> None:
        if ctx.event.type == AUDIO_TYPE:
            await audio.apply(ctx, self.settings)
        elif ctx.event.type == TRANSCRIPTION_TYPE:
            await analysis.apply_transcription(ctx)
        elif ctx.event.type == INITIATION_FAILURE_TYPE:
            await analysis.apply_initiation_failure(ctx)
