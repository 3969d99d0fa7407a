"""Direct routes (``gateway.direct_routes``): a plugin's hot route answered before
Quart's request pipeline, with every guarantee a route of the gateway gives: the request
id, ``{error, code}`` bodies, the body limit and deadline. What the lane does not fully
handle (a browser's ``Origin``, a NUL in the query string, another method) reaches the
same handler through Quart.

The requests are sent as a client sends them: through the app's ASGI entry (Quart's test
client, or an ASGI driver for a body that stalls or a client that leaves)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import pytest
from quart import Blueprint

from gateway import hookimpl
from gateway.contract import PUBLIC, api
from gateway.direct_routes import DirectRequest, DirectResponse, direct, lane_of
from gateway.errors import RateLimited, StartupError, Unauthorized
from tests.test_timeouts import asgi_post

PATH = "/api/test/direct"
LIMIT = 1024


class DirectPlugin:
    """``POST /api/test/direct`` echoes what it was given; ``?fail=...`` raises."""

    def __init__(self) -> None:
        self.seen: list[DirectRequest] = []

    @hookimpl
    def register_routes(self, app: Any, config: Any) -> Blueprint:
        bp = Blueprint("test_direct", __name__)

        @bp.post(PATH)
        @api(auth=PUBLIC, errors=(401, 413, 429))
        @direct(max_body_bytes=LIMIT)
        async def echo(req: DirectRequest) -> DirectResponse:
            self.seen.append(req)
            text = req.body.decode()
            if text == "unauthorized":
                raise Unauthorized("No entry")
            if text == "limited":
                raise RateLimited(7)
            if text == "crash":
                raise RuntimeError("secret-internal-detail")
            return DirectResponse(
                {"path": req.path, "size": len(req.body), "thing": req.headers.get("x-thing")},
                status=201,
                headers={"X-Echo": "yes"},
            )

        return bp


async def app_with_route(make_app: Any, **settings: Any) -> tuple[Any, DirectPlugin]:
    plugin = DirectPlugin()
    app = await make_app(extra_plugins=[("testdirect", plugin)], **settings)
    return app, plugin


def served(app: Any) -> int:
    lane = lane_of(app)
    assert lane is not None
    return lane.served


async def test_the_lane_answers_with_the_handlers_status_body_and_headers(make_app):
    app, plugin = await app_with_route(make_app)
    resp = await app.test_client().post(PATH, data=b"hello", headers={"X-Thing": "a"})
    assert resp.status_code == 201
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Echo"] == "yes"
    assert "Origin" in resp.headers["Vary"]
    assert await resp.get_json() == {"path": PATH, "size": 5, "thing": "a"}
    assert served(app) == 1
    assert plugin.seen[0].body == b"hello"


async def test_a_repeated_header_gives_the_handler_its_first_value(make_app):
    app, plugin = await app_with_route(make_app)
    raw = [(b"X-Thing", b"first"), (b"x-thing", b"second"), (b"content-type", b"text/plain")]
    sent, _ = await drive(app, [chunk(b"hi")], raw)
    assert sent[0]["status"] == 201 and served(app) == 1
    assert plugin.seen[0].headers["x-thing"] == "first"
    assert plugin.seen[0].headers["content-type"] == "text/plain"


async def test_a_request_id_is_made_or_kept_when_safe(make_app):
    app, plugin = await app_with_route(make_app)
    client = app.test_client()
    made = (await client.post(PATH, data=b"x")).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert plugin.seen[-1].request_id == made
    assert (await client.post(PATH, data=b"x")).headers["X-Request-Id"] != made
    kept = await client.post(PATH, data=b"x", headers={"X-Request-Id": "call-42.a"})
    assert kept.headers["X-Request-Id"] == "call-42.a"
    unsafe = await client.post(PATH, data=b"x", headers={"X-Request-Id": "a b<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-Id"])


async def test_errors_are_error_and_code_bodies_with_their_headers(make_app, caplog):
    app, _ = await app_with_route(make_app)
    client = app.test_client()
    resp = await client.post(PATH, data=b"unauthorized")
    assert resp.status_code == 401
    assert await resp.get_json() == {"error": "No entry", "code": "UNAUTHORIZED"}
    resp = await client.post(PATH, data=b"limited")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    with caplog.at_level(logging.ERROR, logger="gateway.http"):
        resp = await client.post(PATH, data=b"crash")
    assert resp.status_code == 500
    body = await resp.get_data(as_text=True)
    assert '"code":"INTERNAL_ERROR"' in body.replace(" ", "")
    assert "secret-internal-detail" not in body  # in the log, never in the answer
    assert any("unhandled error on POST " + PATH in r.getMessage() for r in caplog.records)
    assert served(app) == 3


async def drive(
    app: Any, messages: list[dict[str, Any]], headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[list[dict[str, Any]], int]:
    """Call the app as a server would for ``POST PATH``, the client sending ``messages``
    in order: what the app sent, and how many messages it read."""
    queue = list(reversed(messages))
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return queue.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "query_string": b""}
    await asyncio.wait_for(app({**scope, "headers": list(headers)}, receive, send), 5)
    return sent, reads


def chunk(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_declared_body_over_the_limit_is_413_before_anything_is_read(make_app):
    app, plugin = await app_with_route(make_app)
    declared = [(b"content-length", str(LIMIT + 1).encode())]
    sent, reads = await drive(app, [chunk(b"")], declared)
    assert sent[0]["status"] == 413 and reads == 0 and plugin.seen == []
    assert b'"code":"PAYLOAD_TOO_LARGE"' in sent[1]["body"]


async def test_a_chunked_body_over_the_limit_is_413(make_app):
    app, plugin = await app_with_route(make_app)
    sent, _reads = await drive(app, [chunk(b"x" * 600, more=True), chunk(b"x" * 600)])
    assert sent[0]["status"] == 413 and plugin.seen == []


async def test_a_stalled_body_is_408_within_the_body_timeout(make_app):
    app, plugin = await app_with_route(make_app, body_timeout_seconds=0.2)
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    status, body = await asgi_post(app, PATH, headers, b'{"ca')
    assert status == 408 and b"REQUEST_TIMEOUT" in body
    assert plugin.seen == []


async def test_a_client_that_leaves_gets_nothing_and_nothing_breaks(make_app):
    app, plugin = await app_with_route(make_app)
    sent, _reads = await drive(app, [chunk(b"par", more=True), {"type": "http.disconnect"}])
    assert sent == [] and plugin.seen == []


async def test_a_browser_request_goes_through_quart_and_gets_cors_headers(make_app):
    origin = "https://app.renchi.test"
    app, plugin = await app_with_route(make_app, cors_origins=[origin])
    resp = await app.test_client().post(PATH, data=b"hi", headers={"Origin": origin})
    assert resp.status_code == 201
    assert await resp.get_json() == {"path": PATH, "size": 2, "thing": None}
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-Id"])
    assert plugin.seen[0].request_id == resp.headers["X-Request-Id"]
    assert served(app) == 0
    # Errors and limits hold on that path too.
    resp = await app.test_client().post(PATH, data=b"unauthorized", headers={"Origin": origin})
    assert (await resp.get_json())["code"] == "UNAUTHORIZED"
    big = await app.test_client().post(PATH, data=b"x" * (LIMIT + 1), headers={"Origin": origin})
    assert big.status_code == 413


async def test_a_nul_in_the_query_string_is_refused_as_on_every_route(make_app):
    app, plugin = await app_with_route(make_app)
    resp = await app.test_client().post(PATH + "?q=%00", data=b"x")
    assert resp.status_code == 400
    assert (await resp.get_json())["code"] == "VALIDATION_ERROR"
    assert plugin.seen == [] and served(app) == 0


async def test_another_method_is_quarts_405(make_app):
    app, _ = await app_with_route(make_app)
    resp = await app.test_client().get(PATH)
    assert resp.status_code == 405
    assert (await resp.get_json())["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in resp.headers["Allow"]


async def test_a_direct_route_with_a_converter_stops_the_app_at_startup(make_app):
    class Numbered:
        @hookimpl
        def register_routes(self, app: Any, config: Any) -> Blueprint:
            bp = Blueprint("test_numbered", __name__)

            @bp.post("/api/test/direct/<int:n>")
            @direct()
            async def numbered(req: DirectRequest) -> DirectResponse:
                return DirectResponse({})

            return bp

    with pytest.raises(StartupError, match=r"/api/test/direct/<int:n>.*exact path"):
        await make_app(extra_plugins=[("numbered", Numbered())])


async def test_the_route_is_in_the_openapi_document(make_app):
    app, _ = await app_with_route(make_app)
    document = await (await app.test_client().get("/openapi.json")).get_json()
    assert "post" in document["paths"][PATH]


def test_a_forked_process_makes_request_ids_of_its_own():
    from gateway.responses import request_id_for

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running anything else
        os.write(write, request_id_for("").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child != request_id_for("")  # the generator was seeded again in the child
