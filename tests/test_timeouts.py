"""Slow clients, from a raw socket: a client that announces a body and sends a few bytes
of it cannot keep its connection. JSON routes answer 408 within
``[gateway] body_timeout_seconds``; a webhook source has its own body deadline; an upload
that goes quiet is cut by Hypercorn's read timeout (``read_timeout_seconds``).

The socket waits are bounds on the server's behaviour (each read gives up after 20 s),
not timings: the configured deadlines here are 1-2 s."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import pytest

from tests.support.webhook_plugin import PATH, TestPlugin
from tests.test_cli import free_port, wait_for, write_config

pytestmark = pytest.mark.slow

BOUND = 20.0


def send_partial(port: int, head: str, part: bytes) -> bytes:
    """Send the request head and the first bytes of its body, then read until the
    server closes the connection (or the bound passes: then the test fails)."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + part)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return data
            data += chunk
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Any:
    tmp = tmp_path_factory.mktemp("slow")
    config = write_config(tmp, '[plugins.twilio_voice]\nauth_token = "tok-0123456789"\n')
    text = config.read_text().replace(
        "[gateway]\n", "[gateway]\nbody_timeout_seconds = 1\nread_timeout_seconds = 2\n"
    )
    config.write_text(text)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve",
         "--port", str(port), "--no-worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", proc) == 200
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_trickled_json_body_is_408_and_the_connection_closed(server: int) -> None:
    head = (
        "POST /api/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        "Content-Length: 60000\n"
    )
    answer = send_partial(server, head, b'{"e')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"REQUEST_TIMEOUT"' in answer.replace(b" ", b"")


def test_stalled_upload_is_cut_by_the_read_timeout_before_the_body_deadline(
    server: int,
) -> None:
    """The webhook source allows 10 s for its body; the connection goes quiet after 3
    bytes, and Hypercorn's read timeout (2 s here) closes it first: no answer at all
    (a 408 would mean the body deadline fired instead)."""
    head = (
        "POST /api/webhooks/twilio/status HTTP/1.1\nHost: x\n"
        "Content-Type: application/x-www-form-urlencoded\nContent-Length: 60000\n"
    )
    assert send_partial(server, head, b"Acc") == b""


def test_unread_body_does_not_keep_the_connection(server: int) -> None:
    head = "GET /healthz HTTP/1.1\nHost: x\nContent-Length: 60000\n"
    answer = send_partial(server, head, b"abc")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def asgi_post(
    app: Any, path: str, headers: dict[str, str], first: bytes
) -> tuple[int, bytes]:
    """Drive the ASGI app like a server whose client sent ``first`` and then stalled."""
    stalled = asyncio.Event()
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": first, "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await stalled.wait()  # the client never sends more
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("gateway.test", 443),
        "extensions": {},
    }
    await asyncio.wait_for(app(scope, receive, send), BOUND)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


async def test_webhook_body_deadline_is_the_sources_own(make_app: Any) -> None:
    plugin = TestPlugin(body_timeout_seconds=0.2)
    app = await make_app(extra_plugins=[("testhooks", plugin)], body_timeout_seconds=60)
    headers = {"Content-Type": "application/json", "Content-Length": "60000"}
    status, body = await asgi_post(app, PATH, headers, b'{"ev')
    assert status == 408 and b"REQUEST_TIMEOUT" in body
    stats = app.extensions["gateway_webhook_stats"]["test.events"]
    assert stats["timed_out"] == 1


async def test_json_route_body_deadline_in_process(make_app: Any) -> None:
    app = await make_app(body_timeout_seconds=0.2)
    headers = {"Content-Type": "application/json", "Content-Length": "60000"}
    status, body = await asgi_post(app, "/api/auth/login", headers, b'{"em')
    assert status == 408 and b"REQUEST_TIMEOUT" in body
