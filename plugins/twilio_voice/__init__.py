"""Twilio Voice plugin: signed voice, status and recording webhooks.

- ``POST /api/webhooks/twilio/voice``: records the call and answers TwiML that connects
  the caller to the team's voice agent.
- ``POST /api/webhooks/twilio/status``: call progress, in any order, deduplicated.
- ``POST /api/webhooks/twilio/recording``: recording progress; a job downloads the file.

Every route checks ``X-Twilio-Signature`` against the configured public URL before
anything is parsed. See docs/plugins/twilio_voice.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import hookimpl
from gateway.calls import RECORDING_EXPIRED
from gateway.config import GatewayConfig
from gateway.events import EventHandler
from gateway.webhooks import WebhookSource
from plugins.twilio_voice import contract, recording, settings, status, voice
from plugins.twilio_voice.expiry import DeleteExpiredRecording
from plugins.twilio_voice.media import Downloader
from plugins.twilio_voice.verify import Accounts, Verifier

# Twilio's forms are a few hundred bytes; nothing legitimate comes close to this.
MAX_BODY = 64 * 1024


def timeline(form: Mapping[str, Any]) -> tuple[str | None, Any]:
    """What a stored form reports on a call's timeline: its ``CallStatus`` or
    ``RecordingStatus``, and the status callback's ``SequenceNumber``."""
    status = form.get("CallStatus") or form.get("RecordingStatus")
    return (status if isinstance(status, str) else None), form.get("SequenceNumber")


@hookimpl
def register_webhook_sources(config: GatewayConfig) -> list[WebhookSource]:
    cfg = settings.load(config)
    accounts = Accounts(cfg)
    by_number = Verifier(accounts, voice.number_team_id)
    return [
        WebhookSource(
            name="twilio_voice.voice",
            path="twilio/voice",
            verify=by_number,
            parse=voice.parse,
            apply=voice.apply,
            respond=voice.make_respond(cfg),
            max_body_bytes=MAX_BODY,
            contract=contract.VOICE,
            timeline=timeline,
        ),
        WebhookSource(
            name="twilio_voice.status",
            path="twilio/status",
            verify=by_number,
            parse=status.parse,
            apply_batch=status.apply_batch,
            max_body_bytes=MAX_BODY,
            contract=contract.STATUS,
            timeline=timeline,
        ),
        WebhookSource(
            name="twilio_voice.recording",
            path="twilio/recording",
            verify=Verifier(accounts, recording.call_team_id),
            parse=recording.parse,
            apply=recording.apply,
            max_body_bytes=MAX_BODY,
            contract=contract.RECORDING,
            timeline=timeline,
        ),
    ]


@hookimpl
def register_event_handlers(config: GatewayConfig) -> list[EventHandler]:
    cfg = settings.load(config)
    handlers = [
        EventHandler(
            name="twilio_voice.download_recording",
            event_types=(recording.EVENT_TYPE,),
            handler=Downloader(cfg, Accounts(cfg)),
        )
    ]
    if cfg.delete_expired_recordings:
        handlers.append(
            EventHandler(
                name="twilio_voice.delete_expired_recording",
                event_types=(RECORDING_EXPIRED,),
                handler=DeleteExpiredRecording(cfg, Accounts(cfg)),
            )
        )
    return handlers
