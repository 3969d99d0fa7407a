"""Body size limits per webhook source: 413 from Content-Length before reading, and as
soon as a chunked body passes the limit (without waiting for the rest)."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.webhooks.models import WebhookEvent
from tests.support.webhook_plugin import PATH, TestPlugin, sign


def padded(size: int) -> bytes:
    body = json.dumps({"events": [{"id": "big", "type": "thing.x", "pad": ""}]}).encode()
    return body.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(body)) + b'"')


async def test_content_length_over_the_source_limit_is_413(make_app):
    app = await make_app(extra_plugins=[("testhooks", TestPlugin(max_body_bytes=2000))])
    client = app.test_client()
    body = padded(2001)
    headers = {"Content-Type": "application/json", "X-Test-Signature": sign(body)}
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status_code == 413
    assert (await response.get_json())["code"] == "PAYLOAD_TOO_LARGE"
    ok = padded(2000)
    response = await client.post(PATH, data=ok, headers={**headers, "X-Test-Signature": sign(ok)})
    assert response.status_code == 200
    assert await WebhookEvent.all().count() == 1


async def test_a_source_may_allow_more_than_the_app_wide_default(make_app):
    plugin = TestPlugin(max_body_bytes=50_000)
    app = await make_app(extra_plugins=[("testhooks", plugin)], max_body_bytes=1000)
    body = padded(20_000)
    headers = {"Content-Type": "application/json", "X-Test-Signature": sign(body)}
    response = await app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 200
    # Other routes keep the app-wide limit.
    response = await app.test_client().post("/api/auth/login", data=b"x" * 5000)
    assert response.status_code == 413


async def test_chunked_body_is_cut_off_past_the_limit(make_app):
    app = await make_app(extra_plugins=[("testhooks", TestPlugin(max_body_bytes=64 * 1024))])
    conn = app.test_client().request(
        PATH, method="POST", headers={"Content-Type": "application/json"}
    )
    async with conn:
        for _ in range(3):  # 3 x 30 KiB, no Content-Length, and never completed
            await conn.send(b" " * 30 * 1024)
        for _ in range(500):  # the answer comes without the end of the body
            if conn.status_code is not None:
                break
            await asyncio.sleep(0.01)
        assert conn.status_code == 413
        await conn.send_complete()
    response = await conn.as_response()
    assert (await response.get_json())["code"] == "PAYLOAD_TOO_LARGE"
    assert await WebhookEvent.all().count() == 0


@pytest.mark.parametrize(
    "text",
    [
        "a=1&b=2",
        "a=1&&b=&c",
        "=x&y=",
        "a+b=c+d&e%20f=g%2Bh",
        "euro=%E2%82%AC&bad=%FF&broken=%zz&half=%4",
        "a=1;b=2&a=3",
        "To=%2B15005550006&Caller=+14155550100",
        "",
        "&&&",
    ],
)
def test_form_parsing_matches_the_standard_library(text):
    from urllib.parse import parse_qsl

    from gateway.webhooks.ingest import parse_form

    assert parse_form(text) == parse_qsl(text, keep_blank_values=True)
