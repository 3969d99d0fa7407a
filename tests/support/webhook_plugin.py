"""A provider-neutral webhook plugin for testing the ingestion engine and the job queue.

``POST /api/webhooks/test/events`` takes JSON ``{"events": [{"id", "type", "number"?,
"agent"?, ...}]}`` signed with ``X-Test-Signature: hex(HMAC-SHA256(secret, public_url +
body))``, like real providers sign URL and body. Handlers record what they ran; their
behaviour is set per test through attributes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from gateway import hookimpl
from gateway.errors import ValidationError
from gateway.events import EventHandler, JobContext, PermanentFailure, RetryLater
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest, WebhookSource

SECRET = b"test-webhook-secret-0123456789"
PUBLIC = "https://gateway.test"
PATH = "/api/webhooks/test/events"


def sign(body: bytes, url: str = PUBLIC + PATH) -> str:
    return hmac.new(SECRET, url.encode() + body, hashlib.sha256).hexdigest()


def delivery(*events: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"events": list(events)}).encode()
    return body, {"Content-Type": "application/json", "X-Test-Signature": sign(body)}


class TestPlugin:
    """Register with ``make_app(extra_plugins=[("testhooks", plugin)])``."""

    __test__ = False  # not a pytest class

    def __init__(self, max_body_bytes: int = 64 * 1024, body_timeout_seconds: float = 10.0) -> None:
        from gateway.logs import redactor

        redactor.add(SECRET.decode())  # as the core does for a plugin's SecretStr settings
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.applied: list[str] = []
        self.ran: list[tuple[str, str]] = []  # (handler, event id)
        self.fail_mode: str | None = None  # "error" | "retry_later" | "permanent"
        self.apply_error = False
        self.apply_error_ids: set[str] = set()  # events whose apply raises
        self.apply_gate: asyncio.Event | None = None  # apply waits for it when set
        self.apply_entered = asyncio.Event()
        self.started = asyncio.Event()
        self.block: asyncio.Event | None = None

    def verify(self, req: WebhookRequest) -> bool:
        given = req.headers.get("X-Test-Signature", "")
        return hmac.compare_digest(given, sign(req.body, req.public_url))

    def parse(self, req: WebhookRequest) -> list[ParsedEvent]:
        try:
            items = req.json()["events"]
        except (ValueError, KeyError, TypeError):
            raise ValidationError("bad body") from None
        return [
            ParsedEvent(
                type=item["type"],
                dedup_key=str(item["id"]),
                payload=item,
                phone_number=item.get("number"),
                agent_id=item.get("agent"),
            )
            for item in items
        ]

    async def apply(self, ctx: ApplyContext) -> None:
        self.apply_entered.set()
        if self.apply_gate is not None:
            await self.apply_gate.wait()
        if self.apply_error or ctx.event.dedup_key in self.apply_error_ids:
            raise RuntimeError("apply failed")
        self.applied.append(ctx.event.dedup_key)

    async def record(self, ctx: JobContext) -> None:
        self.started.set()
        if self.block is not None:
            await self.block.wait()
        self.ran.append(("record", ctx.event.payload["id"]))

    async def flaky(self, ctx: JobContext) -> None:
        self.ran.append(("flaky", ctx.event.payload["id"]))
        if self.fail_mode == "retry_later":
            raise RetryLater(30, "provider said 429")
        if self.fail_mode == "permanent":
            raise PermanentFailure("404 from provider")
        if self.fail_mode == "error":
            raise ConnectionError(f"boom with {SECRET.decode()}")

    @hookimpl
    def register_webhook_sources(self, config: Any) -> list[WebhookSource]:
        return [
            WebhookSource(
                name="test.events",
                path="test/events",
                verify=self.verify,
                parse=self.parse,
                apply=self.apply,
                max_body_bytes=self.max_body_bytes,
                body_timeout_seconds=self.body_timeout_seconds,
                form=False,
            )
        ]

    @hookimpl
    def register_event_handlers(self, config: Any) -> list[EventHandler]:
        return [
            EventHandler("test.record", ("thing.*",), self.record),
            EventHandler("test.flaky", ("thing.flaky",), self.flaky, max_attempts=3),
        ]
