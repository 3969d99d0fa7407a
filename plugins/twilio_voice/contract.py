"""How the Twilio routes appear in /openapi.json: signed form posts
(https://www.twilio.com/docs/voice/twiml#request-parameters,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback,
https://www.twilio.com/docs/voice/api/recording#recordingstatuscallback).
Documentation only: the signature is checked on the raw form first."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.contract import Raw, WebhookContract, signature_header

ACCOUNT_SID = r"^AC[0-9a-f]{32}$"
CALL_SID = r"^CA[0-9a-f]{32}$"

TWILIO_SIGNATURE = signature_header(
    "twilioSignature",
    "X-Twilio-Signature",
    "Base64 HMAC-SHA1, keyed with the account's auth token, of the public URL followed by "
    "the sorted form parameters (https://www.twilio.com/docs/usage/webhooks/webhooks-security).",
)


class CallForm(BaseModel):
    """Twilio sends more parameters than these; every one is a string."""

    model_config = {"extra": "allow"}
    __pydantic_extra__: dict[str, str]
    AccountSid: str = Field(pattern=ACCOUNT_SID)
    CallSid: str = Field(pattern=CALL_SID)
    From: str | None = None
    To: str | None = None
    CallStatus: str | None = None
    Direction: str | None = None


class StatusForm(CallForm):
    CallStatus: str
    CallDuration: str | None = None
    Timestamp: str | None = None
    SequenceNumber: str | None = None


class RecordingForm(BaseModel):
    model_config = {"extra": "allow"}
    __pydantic_extra__: dict[str, str]
    AccountSid: str = Field(pattern=ACCOUNT_SID)
    CallSid: str | None = Field(None, pattern=CALL_SID)
    RecordingSid: str = Field(pattern=r"^RE[0-9a-f]{32}$")
    RecordingStatus: str
    RecordingUrl: str | None = None
    RecordingDuration: str | None = None
    ErrorCode: str | None = None


VOICE = WebhookContract(
    auth=(TWILIO_SIGNATURE,),
    body=CallForm,
    response=Raw("text/xml", "TwiML that connects the caller to the voice agent"),
    summary="Twilio: an inbound call",
)
STATUS = WebhookContract(auth=(TWILIO_SIGNATURE,), body=StatusForm, summary="Twilio: call progress")
RECORDING = WebhookContract(
    auth=(TWILIO_SIGNATURE,), body=RecordingForm, summary="Twilio: recording progress"
)
