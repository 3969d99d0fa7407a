"""The core's streaming mode (``WebhookSource.streaming``), provider-neutral: the body
is spooled to a file and signed on the way; the temporary file never outlives the
request, whatever happens to it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

from gateway import hookimpl
from gateway.webhooks.models import WebhookEvent
from gateway.webhooks.source import ParsedEvent, Streaming, WebhookRequest, WebhookSource

SECRET = b"streaming-test-secret-0123456789"
PATH = "/api/webhooks/test/stream"


def sign(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


class StreamingPlugin:
    def __init__(self, timeout: float = 60.0, limit: int = 10 * 1024 * 1024) -> None:
        self.timeout, self.limit = timeout, limit
        self.seen_body: list[bytes] = []

    def signer(self, req: WebhookRequest) -> list[Any] | None:
        if not req.headers.get("X-Test-Signature"):
            return None
        return [hmac.new(SECRET, b"", hashlib.sha256)]

    def verify(self, req: WebhookRequest) -> bool:
        assert req.body == b"" and req.spool is not None
        (mac,) = req.spool.hashers
        return hmac.compare_digest(mac.hexdigest(), req.headers["X-Test-Signature"])

    def parse(self, req: WebhookRequest) -> list[ParsedEvent]:
        self.seen_body.append(req.spool.read())
        doc = req.json()
        return [ParsedEvent(type="thing.big", dedup_key=doc["id"], payload={"id": doc["id"]})]

    @hookimpl
    def register_webhook_sources(self, config: Any) -> list[WebhookSource]:
        return [
            WebhookSource(
                name="test.stream",
                path="test/stream",
                verify=self.verify,
                parse=self.parse,
                max_body_bytes=self.limit,
                form=False,
                streaming=Streaming(signer=self.signer, timeout_seconds=self.timeout),
            )
        ]


def spool_files(app: Any) -> list[Path]:
    spool = Path(app.extensions["gateway"].config.gateway.data_dir) / "spool"
    return sorted(spool.iterdir()) if spool.exists() else []


async def test_a_chunked_body_is_spooled_signed_and_parsed(make_app):
    plugin = StreamingPlugin()
    app = await make_app(extra_plugins=[("streamhooks", plugin)])
    body = json.dumps({"id": "e1", "pad": "x" * 3_000_000}).encode()
    conn = app.test_client().request(PATH, method="POST", headers={"X-Test-Signature": sign(body)})
    async with conn:
        for i in range(0, len(body), 100_000):
            await conn.send(body[i : i + 100_000])
            await asyncio.sleep(0)
        await conn.send_complete()
    response = await conn.as_response()
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert plugin.seen_body == [body]
    assert (await WebhookEvent.get()).dedup_key == "e1"
    assert spool_files(app) == []


class SlowHasher:
    """Stands for a slow disk: every update takes a while (in the worker thread)."""

    def __init__(self) -> None:
        self.mac = hmac.new(SECRET, b"", hashlib.sha256)
        self.largest = 0

    def update(self, data: bytes) -> None:
        self.largest = max(self.largest, len(data))
        time.sleep(0.002)
        self.mac.update(data)

    def hexdigest(self) -> str:
        return self.mac.hexdigest()


async def test_a_fast_sender_cannot_run_ahead_of_a_slow_disk(make_app):
    """The connection is not read while more than a flush is waiting: each chunk the
    consumer gets is at most the high-water mark plus one message, however fast the
    sender is."""
    from gateway.webhooks.backpressure import HIGH_WATER

    plugin = StreamingPlugin()
    hashers: list[SlowHasher] = []
    plugin.signer = lambda req: hashers.append(SlowHasher()) or hashers  # type: ignore[method-assign]
    app = await make_app(extra_plugins=[("streamhooks", plugin)])
    message = 64 * 1024
    body = json.dumps({"id": "fast", "pad": "x" * (8 * 1024 * 1024)}).encode()
    conn = app.test_client().request(PATH, method="POST", headers={"X-Test-Signature": sign(body)})
    async with conn:
        for i in range(0, len(body), message):  # all queued at once: a fast sender
            await conn.send(body[i : i + message])
        await conn.send_complete()
    response = await conn.as_response()
    assert response.status_code == 200
    assert hashers[0].largest <= HIGH_WATER + message


async def test_a_body_that_does_not_arrive_in_time_is_408(make_app):
    app = await make_app(extra_plugins=[("streamhooks", StreamingPlugin(timeout=0.05))])
    conn = app.test_client().request(PATH, method="POST", headers={"X-Test-Signature": "00"})
    async with conn:
        await conn.send(b'{"id": "slow", ')  # and then nothing
        for _ in range(500):
            if conn.status_code is not None:
                break
            await asyncio.sleep(0.01)
        assert conn.status_code == 408
        await conn.send_complete()
    response = await conn.as_response()
    assert (await response.get_json())["code"] == "REQUEST_TIMEOUT"
    assert spool_files(app) == []
    assert await WebhookEvent.all().count() == 0


async def test_a_sender_hanging_up_mid_body_leaves_no_file(make_app):
    app = await make_app(extra_plugins=[("streamhooks", StreamingPlugin())])
    conn = app.test_client().request(PATH, method="POST", headers={"X-Test-Signature": "00"})
    async with conn:
        await conn.send(b'{"id": "gone", "pad": "' + b"x" * 200_000)
        for _ in range(100):  # until the body is being spooled
            if spool_files(app):
                break
            await asyncio.sleep(0.01)
        assert spool_files(app)
        await conn.disconnect()
    assert spool_files(app) == []
    assert await WebhookEvent.all().count() == 0


async def test_files_left_by_a_crashed_process_are_removed(make_app):
    app = await make_app(extra_plugins=[("streamhooks", StreamingPlugin())])
    spool = Path(app.extensions["gateway"].config.gateway.data_dir) / "spool"
    spool.mkdir(parents=True)
    old, recent = spool / "body-old", spool / "body-recent"
    old.write_bytes(b"x")
    recent.write_bytes(b"y")  # perhaps another worker's request in progress
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    body = b'{"id": "e2"}'
    response = await app.test_client().post(
        PATH, data=body, headers={"X-Test-Signature": sign(body)}
    )
    assert response.status_code == 200
    assert spool_files(app) == [recent]
