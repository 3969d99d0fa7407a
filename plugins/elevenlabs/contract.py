"""How the ElevenLabs routes appear in /openapi.json
(https://elevenlabs.io/docs/agents-platform/workflows/post-call-webhooks,
https://elevenlabs.io/docs/agents-platform/customization/personalization).
The post-call webhook is documented only: its signature is computed over the raw body
as it streams to disk, so nothing may parse it first."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.contract import WebhookContract, signature_header

ELEVENLABS_SIGNATURE = signature_header(
    "elevenLabsSignature",
    "ElevenLabs-Signature",
    "t=<unix time>,v0=<hex HMAC-SHA256 of '<t>.<raw body>'> keyed with the webhook secret "
    "(https://elevenlabs.io/docs/product-guides/administration/webhooks).",
)
# The personalization route's shared secret (also accepted as a bearer token).
WEBHOOK_SECRET = signature_header(
    "webhookSecret",
    "X-Webhook-Secret",
    "A shared secret configured on the voice agent's webhook (also accepted as a bearer token).",
)


class Envelope(BaseModel):
    """``post_call_transcription``, ``post_call_audio`` or
    ``call_initiation_failure``."""

    model_config = {"extra": "allow"}
    type: str
    event_timestamp: int | None = None
    data: dict[str, Any]


POST_CALL = WebhookContract(
    auth=(ELEVENLABS_SIGNATURE,), body=Envelope, summary="ElevenLabs: post-call webhook"
)


class PersonalizeIn(BaseModel):
    """The conversation initiation client data request of an inbound Twilio call."""

    model_config = {"extra": "allow"}
    caller_id: str | None = Field(None, max_length=64)
    called_number: str | None = Field(None, max_length=64)
    agent_id: str | None = Field(None, max_length=128)
    call_sid: str | None = Field(None, max_length=64)


class PersonalizeOut(BaseModel):
    type: str
    dynamic_variables: dict[str, Any]
    conversation_config_override: dict[str, Any]
