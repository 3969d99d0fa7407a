"""The ingestion path of one webhook request.

size limit -> ``verify`` on the raw bytes (for a streaming source: the body spooled to
a file and signed on the way, see :mod:`gateway.webhooks.spool`) -> ``parse`` -> one
transaction (event rows with dedup, ``apply``, one job per interested handler; shared
with the webhooks that arrived at the same time, see
:mod:`gateway.webhooks.group_commit`) -> commit -> wake the worker -> respond. Nothing
is acknowledged before the commit: a database failure answers 503 so the sender
retries, and the rolled-back transaction leaves nothing half-done.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, NoReturn
from urllib.parse import unquote_plus

from quart import Request, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from gateway.counters import counters
from gateway.errors import (
    GatewayError,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    ValidationError,
)
from gateway.jobs.worker import notify
from gateway.plugins import await_me_maybe
from gateway.webhooks.checks import check_events, failure_answer
from gateway.webhooks.group_commit import GroupCommit
from gateway.webhooks.source import WebhookRequest, WebhookSource
from gateway.webhooks.spool import spool_dir, spooled
from gateway.webhooks.store import Delivery, store_batch

log = logging.getLogger("gateway.webhooks")

STATS_KEY = "gateway_webhook_stats"
GROUP_KEY = "gateway_webhook_group_commit"
SPOOL_KEY = "gateway_webhook_spool_dir"


def stats(app: Any = None) -> dict[str, Counter[str]]:
    """Per-source counters: received, duplicate, unauthorized, too_large, timed_out,
    invalid, failed."""
    return (app or current_app).extensions.setdefault(STATS_KEY, {})


def _count(source: WebhookSource, what: str, app: Any = None) -> None:
    app = app or current_app
    per_source = stats(app).get(source.name)
    if per_source is None:
        per_source = stats(app)[source.name] = Counter()
    per_source[what] += 1
    counters(app).webhook(source.name, what)


async def read_body(req: Request, limit: int, deadline_seconds: float | None = None) -> bytes:
    """The body, refused with 413 from Content-Length before reading, or as soon as a
    chunked body passes ``limit`` (only ``limit`` bytes are ever held); 408 when it has
    not all arrived within ``deadline_seconds`` (Quart's ``BODY_TIMEOUT`` does not apply:
    the body is read here, not through ``get_data``)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge()
    body = req.body  # Quart's limit for this request is at least ``limit`` (see plugin)
    data = bytearray()
    try:
        async with asyncio.timeout(deadline_seconds):
            async for chunk in body:
                data.extend(chunk)
                if len(data) > limit:
                    raise PayloadTooLarge()
    except TimeoutError:
        raise RequestTimeout() from None
    return bytes(data)


def _public_url(public_base: str, path: str, query: str) -> str:
    return public_base.rstrip("/") + path + (f"?{query}" if query else "")


def parse_form(text: str) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, blank values kept: the same result
    as ``urllib.parse.parse_qsl(text, keep_blank_values=True)`` (tested against it) at
    about half the cost, because only the few encoded names and values are decoded.
    It runs on every webhook."""
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        pairs.append((name, value))
    return pairs


def build_request(req: Request, body: bytes, source: WebhookSource, gw: Any) -> WebhookRequest:
    ctype = req.headers.get("Content-Type", "")
    form: MultiDict[str, str] = MultiDict()
    if source.form and ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = MultiDict(parse_form(body.decode("utf-8", "replace")))
    query = req.query_string.decode("latin-1")
    return WebhookRequest(
        method=req.method,
        public_url=_public_url(gw.config.gateway.public_url, req.path, query),
        path=req.path,
        query_string=query,
        headers=req.headers,  # type: ignore[arg-type]  # werkzeug's Headers: a mapping, case-insensitive
        body=body,
        content_type=ctype,
        form=form,
        received_at=gw.clock.now(),
    )


def group_commit(app: Any) -> GroupCommit:
    """This app's (this process's) group commit, made on first use."""
    group = app.extensions.get(GROUP_KEY)
    if group is None:
        gw = app.extensions["gateway"]
        group = app.extensions[GROUP_KEY] = GroupCommit(
            lambda batch: store_batch(batch, gw), observer=counters(app)
        )
    return group


async def handle(source: WebhookSource) -> Response:
    """The Quart view for one source."""
    # The objects behind Quart's proxies, looked up once: this runs on every webhook.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    http = request._get_current_object()  # type: ignore[attr-defined]
    gw = app.extensions["gateway"]
    if source.streaming is not None:
        return await _handle_streamed(app, http, source, gw)
    try:
        body = await read_body(http, source.max_body_bytes, source.body_timeout_seconds)
    except PayloadTooLarge:
        _count(source, "too_large")
        raise
    except RequestTimeout:
        _count(source, "timed_out")
        raise
    return await _ingest(app, source, build_request(http, body, source, gw))


async def _handle_streamed(app: Any, http: Request, source: WebhookSource, gw: Any) -> Response:
    """Streaming mode: the signer sees the headers first (no signature, no reading), the
    body goes to a temporary file through the signer's hashers, then the usual path."""
    assert source.streaming is not None
    req = build_request(http, b"", source, gw)
    try:
        if http.content_length is not None and http.content_length > source.max_body_bytes:
            raise PayloadTooLarge()
        hashers = await await_me_maybe(source.streaming.signer(req))
        if not hashers:
            _refuse(app, source)
        directory = app.extensions.get(SPOOL_KEY)
        if directory is None:
            directory = app.extensions[SPOOL_KEY] = spool_dir(gw.config.gateway.data_dir)
        async with spooled(
            http.body,
            directory,
            hashers,
            source.max_body_bytes,
            source.streaming.timeout_seconds,
        ) as req.spool:
            return await _ingest(app, source, req)
    except PayloadTooLarge:
        _count(source, "too_large")
        raise
    except RequestTimeout:
        _count(source, "timed_out")
        raise


def _refuse(app: Any, source: WebhookSource) -> NoReturn:
    _count(source, "unauthorized", app)
    log.warning("webhook %s: invalid signature, refused", source.name)
    raise Unauthorized("Invalid signature")


async def _ingest(app: Any, source: WebhookSource, req: WebhookRequest) -> Response:
    """verify -> parse -> store (group commit) -> respond."""
    try:
        events, stored = await _verify_parse_store(app, source, req)
    except GatewayError:
        raise
    except Exception as exc:
        # One place for every database (or, for a streaming source, disk) failure on the
        # way (verify and parse may query too, e.g. to find a call's team).
        answer = failure_answer(app, source.name, exc)
        if answer is None:
            raise
        _count(source, answer[0], app)
        raise answer[1] from None
    _count(source, "received", app)
    if stored.new < len(events):
        _count(source, "duplicate", app)
    if stored.queued:
        # Only when there is work: waking the worker costs claim queries.
        notify(app)
    if source.respond is not None:
        return await await_me_maybe(source.respond(req, events, stored.teams))
    # The same answer for a duplicate: the sender only needs to know it may stop.
    return jsonify({"received": len(events)})


async def _verify_parse_store(app: Any, source: WebhookSource, req: WebhookRequest) -> Any:
    try:
        ok = await await_me_maybe(source.verify(req))
    except Unauthorized:
        ok = False
    if not ok:
        _refuse(app, source)
    try:
        # parse may read the database (or, for a streaming source, write blobs).
        events = list(await await_me_maybe(source.parse(req)) or [])
        check_events(events)
    except ValidationError:
        _count(source, "invalid", app)
        raise
    return events, await group_commit(app).submit(Delivery(source, events))
