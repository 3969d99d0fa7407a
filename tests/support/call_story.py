"""One inbound call's whole story as the providers deliver it: Twilio's signed status
and recording callbacks, then ElevenLabs' signed post-call transcription. The same
requests serve the in-process API tests and the browser tests (which send them to a
real ``gateway serve``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.support.fake_elevenlabs import AGENT, conversation, headers
from tests.support.fake_twilio import form_body, signed, wav_bytes

ACCOUNT = "AC" + "5a" * 16
TOKEN = "console-twilio-auth-token"
NUMBER = "+14155550100"
CALLER = "+14155550199"
AUDIO = wav_bytes(2.0)


@dataclass
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class CallStory:
    call_sid: str
    recording_sid: str
    conversation_id: str
    public_url: str  # what the gateway's [gateway] public_url says (Twilio signs it)
    media_url: str  # the fake Twilio media host's URL of the recording
    start: int  # unix seconds: the call starts here, the transcript arrives 90 s later
    number: str = NUMBER
    caller: str = CALLER
    deliveries: list[Delivery] = field(default_factory=list)

    def twilio(self, route: str, form: dict[str, str]) -> Delivery:
        url = f"{self.public_url}/api/webhooks/twilio/{route}"
        return Delivery(f"/api/webhooks/twilio/{route}", form_body(form), signed(TOKEN, url, form))

    def status(self, status: str, seq: int, offset: int, **extra: str) -> Delivery:
        form = {
            "AccountSid": ACCOUNT,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Called": self.number,
            "Caller": self.caller,
            "Direction": "inbound",
            "From": self.caller,
            "To": self.number,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(seq),
            "Timestamp": _rfc2822(self.start + offset),
            **extra,
        }
        return self.twilio("status", form)

    def recording(self) -> Delivery:
        form = {
            "AccountSid": ACCOUNT,
            "CallSid": self.call_sid,
            "RecordingSid": self.recording_sid,
            "RecordingUrl": self.media_url,
            "RecordingStatus": "completed",
            "RecordingDuration": "2",
            "RecordingChannels": "1",
            "RecordingSource": "StartCallRecordingAPI",
        }
        return self.twilio("recording", form)

    def transcription(self, now: int) -> Delivery:
        data = conversation(
            self.conversation_id,
            start=self.start,
            call_sid=self.call_sid,
            caller=self.caller,
            agent_number=self.number,
        )
        body = json.dumps(
            {"type": "post_call_transcription", "event_timestamp": now, "data": data}
        ).encode()
        return Delivery("/api/webhooks/elevenlabs", body, headers(body, now))

    def telephony(self) -> list[Delivery]:
        """Out of order, as Twilio may deliver them, with a duplicate."""
        return [
            self.status("ringing", 1, 2),
            self.status("initiated", 0, 0),
            self.status("in-progress", 2, 5),
            self.status("completed", 3, 65, CallDuration="60"),
            self.status("ringing", 1, 2),
            self.recording(),
        ]


def _rfc2822(unix: int) -> str:
    from email.utils import formatdate

    return formatdate(unix, usegmt=True)


def plugin_settings(media_base_url: str, secret: str) -> dict[str, dict[str, object]]:
    """``[plugins.*]`` for the story: Twilio (media on the fake host) and ElevenLabs."""
    return {
        "twilio_voice": {
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "api_base_url": media_base_url,
            "stream_url": "wss://agent.test/stream",
        },
        "elevenlabs": {"webhook_secret": secret},
    }


__all__ = ["AGENT", "AUDIO", "CALLER", "NUMBER", "CallStory", "Delivery", "plugin_settings"]
