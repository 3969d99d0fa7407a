"""``ElevenLabs-Signature: t=<unix seconds>,v0=<hex>``.

``v0`` is the lowercase hex HMAC-SHA256, keyed with the webhook secret, of
``<t>.<raw body>`` (https://elevenlabs.io/docs/eleven-agents/workflows/post-call-webhooks,
and ``construct_event`` in the official ``elevenlabs`` Python SDK,
https://github.com/elevenlabs/elevenlabs-python/blob/main/src/elevenlabs/webhooks_custom.py,
which the tests use as the reference). The body can be 100 MB of audio, so the HMAC
is computed while the body streams to disk: :class:`Signer` starts one HMAC per
accepted secret from the header's timestamp, the core feeds them the body, and
:class:`Verifier` compares.

Where we differ from the SDK, on purpose:

- a timestamp more than 5 minutes ahead of our clock is refused (the SDK only refuses
  ones older than 30 minutes; a signature from the future is either a skewed clock or a
  replay being prepared);
- spaces around the ``,``-separated parts are ignored (the SDK fails on them);
- several ``v0=`` entries are each tried, as Stripe-style schemes do during a key
  rotation (the SDK keeps the last one);
- the comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.webhooks import WebhookRequest

HEADER = "ElevenLabs-Signature"
SCHEME = "v0"
MAX_AGE_SECONDS = 30 * 60
MAX_AHEAD_SECONDS = 5 * 60
_MAX_CANDIDATES = 8  # a header is not a place to try a thousand guesses


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: str  # as sent: it is part of the signed string
    candidates: tuple[str, ...]  # lowercase hex digests


def parse_header(value: str | None) -> SignatureHeader | None:
    """The timestamp and the ``v0`` digests, or ``None`` if the header is unusable."""
    if not value:
        return None
    timestamp: str | None = None
    candidates: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            continue
        item = item.strip()
        if name == "t":
            timestamp = item
        elif name == SCHEME and item:
            candidates.append(item.lower())
    if not timestamp or not timestamp.isdigit() or len(timestamp) > 12 or not candidates:
        return None
    return SignatureHeader(timestamp, tuple(candidates[:_MAX_CANDIDATES]))


def fresh(header: SignatureHeader, now: datetime) -> bool:
    """Not older than 30 minutes, not more than 5 minutes ahead of ``now``."""
    age = now.timestamp() - int(header.timestamp)
    return -MAX_AHEAD_SECONDS <= age <= MAX_AGE_SECONDS


def start(secret: str, timestamp: str) -> hmac.HMAC:
    """An HMAC for ``secret`` already fed with ``<t>.``; the body follows."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header ElevenLabs sends for ``body`` (tests and docs examples)."""
    mac = start(secret, str(timestamp))
    mac.update(body)
    return f"t={timestamp},{SCHEME}={mac.hexdigest()}"


def _header(headers: Mapping[str, str]) -> SignatureHeader | None:
    return parse_header(headers.get(HEADER))


class Signer:
    """``Streaming.signer``: one HMAC per accepted secret, or ``None`` (answered 401
    before the body is read) when the header is missing, malformed or stale."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets

    def __call__(self, req: WebhookRequest) -> list[hmac.HMAC] | None:
        header = _header(req.headers)
        if header is None or not self.secrets or req.received_at is None:
            return None
        if not fresh(header, req.received_at):
            return None
        return [start(secret, header.timestamp) for secret in self.secrets]


class Verifier:
    """``WebhookSource.verify``: any ``v0`` matching any secret's HMAC of the body."""

    def __call__(self, req: WebhookRequest) -> bool:
        header = _header(req.headers)
        if header is None or req.spool is None or req.received_at is None:
            return False
        if not fresh(header, req.received_at):
            return False
        ok = False
        for mac in req.spool.hashers:
            digest = mac.hexdigest()
            for candidate in header.candidates:
                # No early exit: every comparison is made, so timing tells nothing.
                ok |= hmac.compare_digest(digest, candidate)
        return ok
