"""``post_call_audio``: the conversation's MP3, as one base64 string in the JSON.

By the time :func:`store` runs, the body is in a spooled file and its signature has
been checked. The audio string is located without loading it
(:func:`gateway.webhooks.jsonscan.scan_json_file`), decoded block by block into the
recording store under a key derived from the conversation id (so a redelivery
overwrites the same blob instead of leaving a second one), and only then is the event
stored; :func:`apply` writes the recording row in the same transaction as the event,
points the conversation's analysis at it (audio and transcript come in either order)
and emits ``voice.call.audio_stored``. A duplicate delivery finds the recording already
stored and writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from quart import current_app

from gateway.calls import (
    Call,
    Recording,
    VoiceCallAudioStored,
    attach_audio,
    call_for_analysis,
    expiry,
)
from gateway.errors import ValidationError
from gateway.identity import Team
from gateway.storage import recording_storage
from gateway.webhooks import ApplyContext, Span, WebhookRequest, copy_base64
from plugins.elevenlabs.settings import ElevenLabsSettings

log = logging.getLogger("gateway.plugins.elevenlabs")

PROVIDER_TYPE = "post_call_audio"
CONTENT_TYPE = "audio/mpeg"
# ElevenLabs' docs name the field full_audio; the API reference we serve names it
# audio_base_64. Either is accepted (full_audio first when both are there).
AUDIO_PATHS = (("data", "full_audio"), ("data", "audio_base_64"))
# Conversation ids are tokens like "conv_01jx…"; 58 characters leave room for ":audio"
# in Recording.external_id (64).
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,57}$")


def _safe_id(conversation_id: str) -> str:
    """The id itself when it is a plain token, else a hash of it (a key or a column
    never carries what the sender chose to put in it)."""
    if _SAFE.match(conversation_id):
        return conversation_id
    return "h" + hashlib.sha256(conversation_id.encode()).hexdigest()[:40]


def storage_key(conversation_id: str) -> str:
    return f"elevenlabs/{_safe_id(conversation_id)}.mp3"


def recording_external_id(conversation_id: str) -> str:
    """``Recording.external_id`` (64 characters at most) of a conversation's audio."""
    return f"{_safe_id(conversation_id)}:audio"


async def _write_blob(req: WebhookRequest, span: Span, key: str) -> tuple[int, str]:
    assert req.spool is not None
    writer = recording_storage(current_app).writer(key)
    try:
        size = await copy_base64(req.spool.path, span, writer)
        if size == 0:
            raise ValidationError("post_call_audio has no audio")
        await writer.commit()
    except ValueError:
        await writer.abort()
        raise ValidationError("post_call_audio: the audio is not base64") from None
    except BaseException:
        await writer.abort()
        raise
    return size, writer.hexdigest()


async def store(
    req: WebhookRequest,
    data: dict[str, Any],
    spans: dict[tuple[str, ...], Span],
    conversation_id: str,
) -> dict[str, Any]:
    """Put the audio into the recording store; returns the event's payload."""
    span = next((spans[p] for p in AUDIO_PATHS if p in spans), None)
    if span is None:
        raise ValidationError("post_call_audio without full_audio (or audio_base_64)")
    key = storage_key(conversation_id)
    external_id = recording_external_id(conversation_id)
    existing = await Recording.filter(external_id=external_id).first()
    if existing is not None and existing.status in {"stored", "expired"}:
        # A redelivery: the audio was stored (perhaps since deleted after its retention);
        # the event will be a duplicate and nothing may be written again.
        size, sha256 = existing.size_bytes or 0, existing.sha256 or ""
    else:
        size, sha256 = await _write_blob(req, span, key)
        log.info("stored audio of conversation %s (%d bytes)", conversation_id[:64], size)
    call = await Call.filter(conversation_id=conversation_id).first()
    return {
        "conversation_id": conversation_id,
        "agent_id": data.get("agent_id") if isinstance(data.get("agent_id"), str) else None,
        "call_sid": call.external_id if call is not None else None,
        "recording_external_id": external_id,
        "storage_key": key,
        "size_bytes": size,
        "sha256": sha256,
        "content_type": CONTENT_TYPE,
    }


async def apply(ctx: ApplyContext, settings: ElevenLabsSettings) -> None:
    """The recording row, in the event's transaction: linked to the call (and its team)
    when a call with this conversation id is known, expiring after the team's
    retention period; then the analysis and the neutral event."""
    rec = await _recording(ctx, settings)
    payload = ctx.event.payload
    conn = ctx.connection
    row = await attach_audio(
        payload["conversation_id"],
        rec.id,
        using_db=conn,
        provider="elevenlabs",
        team_id=rec.team_id,
        agent_id=payload.get("agent_id"),
    )
    call = await call_for_analysis(row, using_db=conn)
    event = VoiceCallAudioStored(
        analysis_id=row.id,
        conversation_id=payload["conversation_id"],
        call_id=call.id if call is not None else None,
        call_sid=row.call_sid or (call.external_id if call is not None else None),
        team_id=row.team_id,
        agent_id=row.agent_id,
        provider=row.provider,
        recording_id=rec.id,
        storage_key=payload["storage_key"],
        content_type=CONTENT_TYPE,
        size_bytes=payload["size_bytes"],
        sha256=payload["sha256"],
    )
    await ctx.emit(event, team_id=event.team_id)


async def _recording(ctx: ApplyContext, settings: ElevenLabsSettings) -> Recording:
    payload, conn = ctx.event.payload, ctx.connection
    call = await Call.filter(conversation_id=payload["conversation_id"]).using_db(conn).first()
    team: Any = ctx.team
    if team is None and call is not None and call.team_id is not None:
        team = await Team.filter(id=call.team_id).using_db(conn).first()
    days = team.recording_retention_days if team is not None else settings.default_retention_days
    now = ctx.clock.now()
    values: dict[str, Any] = {
        "call_id": call.id if call is not None else None,
        "team_id": team.id if team is not None else None,
        "call_external_id": call.external_id if call is not None else None,
        "status": "stored",
        "provider_status": "completed",
        "storage_key": payload["storage_key"],
        "size_bytes": payload["size_bytes"],
        "sha256": payload["sha256"],
        "content_type": CONTENT_TYPE,
        "error": None,
        "stored_at": now,
        "expires_at": expiry(now, days),
    }
    query = Recording.filter(external_id=payload["recording_external_id"]).using_db(conn)
    rec = await query.select_for_update().first()
    if rec is None:
        return await Recording.create(
            external_id=payload["recording_external_id"], using_db=conn, **values
        )
    for name, value in values.items():
        setattr(rec, name, value)
    await rec.save(using_db=conn)
    return rec
