"""Parsing the main webhook: one envelope ``{"type", "event_timestamp", "data"}`` per
request, one event per request, deduplicated on (conversation id, type).

Only ``post_call_audio`` is handled fully here (:mod:`plugins.elevenlabs.audio`).
``post_call_transcription``, ``call_initiation_failure`` and any type we do not know
yet are stored as received under a provider-neutral event type, so nothing is lost
and handlers can be added later; the sender gets its 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from gateway.errors import PayloadTooLarge, ValidationError
from gateway.webhooks.jsonscan import TooLarge, scan_json_file
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest
from plugins.elevenlabs import audio
from plugins.elevenlabs.settings import ElevenLabsSettings

# ElevenLabs' "type" -> our event type. Types not listed here become UNKNOWN_TYPE.
EVENT_TYPES = {
    audio.PROVIDER_TYPE: audio.EVENT_TYPE,
    "post_call_transcription": "voice.call.transcription_received",
    "call_initiation_failure": "voice.call.initiation_failed",
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
        if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
            raise ValidationError("Expected a JSON object with a 'type'")
        kind = envelope["type"]
        data = envelope.get("data")
        if not isinstance(data, dict):
            data = {}
        conversation_id = _text(data.get("conversation_id"))
        if kind == audio.PROVIDER_TYPE:
            if conversation_id is None:
                raise ValidationError("post_call_audio without a conversation_id")
            payload = await audio.store(req, data, scanned.spans, conversation_id)
        else:
            payload = envelope
        return [
            ParsedEvent(
                type=EVENT_TYPES.get(kind, UNKNOWN_TYPE),
                dedup_key=dedup_key(kind, conversation_id, envelope),
                payload=payload,
                agent_id=_text(data.get("agent_id")),
                occurred_at=occurred_at(envelope, req.received_at),
            )
        ]


class Applier:
    """``WebhookSource.apply``: only the audio has a row to write for now."""

    def __init__(self, settings: ElevenLabsSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: ApplyContext) -> None:
        if ctx.event.type == audio.EVENT_TYPE:
            await audio.apply(ctx, self.settings)
