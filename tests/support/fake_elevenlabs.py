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
