"""ElevenLabs as a sender of post-call webhooks: envelopes signed the documented way
(``ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256 of "<t>.<body>">``, computed here
by hand, not with the plugin's code), and large audio deliveries generated on the fly
and streamed chunked, never held whole in memory."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PATH = "/api/webhooks/elevenlabs"
SECRET = "wsec_current_0123456789abcdef"
OLD_SECRET = "wsec_previous_0123456789abcdef"
AGENT = "agent_acme_01"


def signature(body: bytes, t: int, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v0={mac.hexdigest()}"


def envelope(kind: str, t: int, **data: Any) -> bytes:
    return json.dumps({"type": kind, "event_timestamp": t, "data": data}).encode()


def headers(body: bytes, t: int, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "ElevenLabs-Signature": signature(body, t, secret)}


def transcription(conversation_id: str, t: int, agent_id: str = AGENT) -> bytes:
    return envelope(
        "post_call_transcription",
        t,
        agent_id=agent_id,
        conversation_id=conversation_id,
        status="done",
        transcript=[
            {"role": "agent", "message": "Hello, this is Acme.", "time_in_call_secs": 0},
            {"role": "user", "message": "Hi, I'd like a demo.", "time_in_call_secs": 2},
        ],
        metadata={"start_time_unix_secs": t - 60, "call_duration_secs": 47},
        analysis={"call_successful": "success", "transcript_summary": "Wants a demo."},
    )


@dataclass
class AudioDelivery:
    """A ``post_call_audio`` body of ``audio_bytes`` random bytes (seeded), produced in
    chunks twice: once to sign it, once to send it."""

    conversation_id: str
    audio_bytes: int
    t: int
    field: str = "full_audio"
    agent_id: str | None = AGENT
    seed: int = 7
    chunk: int = 3 * 64 * 1024  # a multiple of 3: chunked base64 == base64 of the whole

    def _prefix(self) -> bytes:
        data: dict[str, Any] = {"conversation_id": self.conversation_id}
        if self.agent_id is not None:
            data["agent_id"] = self.agent_id
        head = json.dumps({"type": "post_call_audio", "event_timestamp": self.t, "data": data})
        return head[:-2].encode() + f', "{self.field}": "'.encode()

    def audio_chunks(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        left = self.audio_bytes
        while left > 0:
            n = min(self.chunk, left)
            left -= n
            yield rng.randbytes(n)

    def body_chunks(self) -> Iterator[bytes]:
        yield self._prefix()
        for raw in self.audio_chunks():
            yield base64.b64encode(raw)
        yield b'"}}'

    def audio_digest(self) -> str:
        sha = hashlib.sha256()
        for raw in self.audio_chunks():
            sha.update(raw)
        return sha.hexdigest()

    def signature(self, secret: str = SECRET) -> str:
        mac = hmac.new(secret.encode(), f"{self.t}.".encode(), hashlib.sha256)
        for part in self.body_chunks():
            mac.update(part)
        return f"t={self.t},v0={mac.hexdigest()}"

    def body(self) -> bytes:
        """The whole body (small deliveries only)."""
        return b"".join(self.body_chunks())


async def send_chunked(client: Any, delivery: AudioDelivery, **extra_headers: str) -> Any:
    """POST ``delivery`` through the ASGI test client without a Content-Length (as
    ElevenLabs sends audio: Transfer-Encoding: chunked); returns the response."""
    head = {
        "Content-Type": "application/json",
        "ElevenLabs-Signature": delivery.signature(),
        **extra_headers,
    }
    conn = client.request(PATH, method="POST", headers=head)
    async with conn:
        for part in delivery.body_chunks():
            if conn.status_code is not None:  # answered early (401, 413): stop sending
                break
            await conn.send(part)
            await asyncio.sleep(0)  # let the app read it: the body is never all queued
        await conn.send_complete()
    return await conn.as_response()


def conversation(
    conversation_id: str,
    *,
    start: int,
    agent_id: str = AGENT,
    call_sid: str | None = None,
    status: str = "done",
    caller: str = "+14155550199",
    agent_number: str = "+14155550100",
) -> dict[str, Any]:
    """A conversation as the post-call webhook's ``data`` and the "get conversation"
    API both carry it (https://elevenlabs.io/docs/eleven-agents/workflows/post-call-webhooks,
    https://elevenlabs.io/docs/api-reference/conversations/get), with a Twilio call."""
    metadata: dict[str, Any] = {
        "start_time_unix_secs": start,
        "call_duration_secs": 62,
        "cost": 415,
        "main_language": "en",
        "termination_reason": "end_call tool was called.",
    }
    if call_sid is not None:
        metadata["phone_call"] = {
            "type": "twilio",
            "direction": "inbound",
            "phone_number_id": "phnum_123",
            "agent_number": agent_number,
            "external_number": caller,
            "call_sid": call_sid,
            "stream_sid": "MZ" + "0" * 32,
        }
    return {
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "status": status,
        "user_id": None,
        "transcript": [
            {"role": "agent", "message": "Hi, this is Ava from Acme.", "time_in_call_secs": 0},
            {"role": "user", "message": "I'd like a demo next Tuesday.", "time_in_call_secs": 4},
            {"role": "agent", "message": None, "time_in_call_secs": 9, "tool_calls": []},
        ],
        "metadata": metadata,
        "analysis": {
            "call_successful": "success",
            "transcript_summary": "The caller booked a demo for Tuesday.",
            "evaluation_criteria_results": {
                "booked": {"criteria_id": "booked", "result": "success", "rationale": "Booked."}
            },
            "data_collection_results": {
                "day": {"data_collection_id": "day", "value": "Tuesday", "rationale": "Said so."}
            },
        },
        "conversation_initiation_client_data": {
            "dynamic_variables": {"customer_name": "Jo Smith"},
        },
        "has_audio": True,
        "has_user_audio": True,
        "has_response_audio": True,
    }


def delivery(kind: str, data: dict[str, Any], t: int) -> tuple[bytes, dict[str, str]]:
    """A signed post-call webhook: (body, headers)."""
    body = json.dumps({"type": kind, "event_timestamp": t, "data": data}).encode()
    return body, headers(body, t)
