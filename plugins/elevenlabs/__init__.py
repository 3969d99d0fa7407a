"""ElevenLabs plugin: the voice agent's signed post-call webhooks.

``POST /api/webhooks/elevenlabs`` receives every post-call type. The body streams to a
temporary file while its ``ElevenLabs-Signature`` HMAC is computed (an audio delivery
is up to ``audio_max_bytes``, 150 MiB by default; memory stays flat), then:

- ``post_call_audio``: the MP3 is decoded from base64 into the recording store and a
  ``voice.call.audio_stored`` event is stored with its recording row;
- ``post_call_transcription`` / ``call_initiation_failure`` / anything else: stored as
  ``voice.call.transcription_received`` / ``voice.call.initiation_failed`` /
  ``voice.agent.event_received`` with the envelope as payload.

Routed to the team by ``agent_id``; deduplicated on (conversation id, type). See
docs/plugins/elevenlabs.md.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.webhooks.source import Streaming, WebhookSource
from plugins.elevenlabs import settings as settings_mod
from plugins.elevenlabs.events import Applier, Parser
from plugins.elevenlabs.signature import Signer, Verifier


@hookimpl
def register_webhook_sources(config: GatewayConfig) -> list[WebhookSource]:
    cfg = settings_mod.load(config)
    return [
        WebhookSource(
            name="elevenlabs.webhook",
            path="elevenlabs",
            verify=Verifier(),
            parse=Parser(cfg),
            apply=Applier(cfg),
            max_body_bytes=cfg.audio_max_bytes,
            form=False,
            streaming=Streaming(
                signer=Signer(cfg.secrets()), timeout_seconds=cfg.body_timeout_seconds
            ),
        )
    ]
