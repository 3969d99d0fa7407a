"""The ingestion path of one webhook request.

size limit -> ``verify`` on the raw bytes -> ``parse`` -> one transaction (event rows
with dedup, ``apply``, one job per interested handler) -> commit -> wake the worker ->
respond. Nothing is acknowledged before the commit: a database failure answers 503 so
the sender retries, and the rolled-back transaction leaves nothing half-done.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from quart import Request, Response, current_app, jsonify, request
from tortoise.exceptions import BaseORMException, IntegrityError
from tortoise.transactions import in_transaction
from werkzeug.datastructures import MultiDict

from gateway.errors import GatewayError, PayloadTooLarge, ServiceUnavailable, Unauthorized
from gateway.identity.models import PhoneNumber, Team, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.queue import QueueSettings, jobs_for
from gateway.jobs.worker import notify
from gateway.plugins import await_me_maybe
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest, WebhookSource

log = logging.getLogger("gateway.webhooks")

STATS_KEY = "gateway_webhook_stats"
DEDUP_MAX = 255
# Errors that mean "the database could not do it now", answered 503 so senders retry.
try:  # asyncpg is optional (SQLite-only installs)
    from asyncpg import PostgresError as _PgError
except ImportError:  # pragma: no cover
    _PgError = sqlite3.Error
DB_ERRORS: tuple[type[BaseException], ...] = (
    BaseORMException,
    sqlite3.Error,
    _PgError,
    OSError,
)


def stats(app: Any = None) -> dict[str, Counter[str]]:
    """Per-source counters: received, duplicate, unauthorized, too_large, failed."""
    return (app or current_app).extensions.setdefault(STATS_KEY, {})


def _count(source: WebhookSource, what: str) -> None:
    stats().setdefault(source.name, Counter())[what] += 1


async def read_body(req: Request, limit: int) -> bytes:
    """The body, refused with 413 from Content-Length before reading, or as soon as a
    chunked body passes ``limit`` (only ``limit`` bytes are ever held)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge()
    body = req.body  # Quart's limit for this request is at least ``limit`` (see plugin)
    data = bytearray()
    async for chunk in body:
        data.extend(chunk)
        if len(data) > limit:
            raise PayloadTooLarge()
    return bytes(data)


def _public_url(public_base: str, req: Request) -> str:
    query = req.query_string.decode("latin-1")
    return public_base.rstrip("/") + req.path + (f"?{query}" if query else "")


def build_request(req: Request, body: bytes, source: WebhookSource, gw: Any) -> WebhookRequest:
    ctype = req.headers.get("Content-Type", "")
    form: MultiDict[str, str] = MultiDict()
    if source.form and ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return WebhookRequest(
        method=req.method,
        public_url=_public_url(gw.config.gateway.public_url, req),
        path=req.path,
        query_string=req.query_string.decode("latin-1"),
        headers=req.headers,
        body=body,
        content_type=ctype,
        form=form,
        received_at=gw.clock.now(),
    )


def _dedup(key: str) -> str:
    # Keys longer than the column are hashed, never truncated (two keys sharing a
    # prefix must stay distinct).
    if len(key) <= DEDUP_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


async def _team_of(event: ParsedEvent) -> Team | None:
    # One query per lookup (joined), not two: this runs on every webhook.
    if event.phone_number:
        number = await PhoneNumber.filter(number=event.phone_number).select_related("team").first()
        if number is not None:
            return number.team
    if event.agent_id:
        agent = await VoiceAgent.filter(agent_id=event.agent_id).select_related("team").first()
        if agent is not None:
            return agent.team
    return None


async def _store(
    source: WebhookSource, events: list[ParsedEvent], teams: list[Team | None], gw: Any
) -> tuple[int, int]:
    """The one transaction. Returns how many events were new and how many jobs they
    queued."""
    now = gw.clock.now()
    handlers = list(gw.registry("register_event_handlers").values())
    settings = QueueSettings.from_config(gw.config)
    new = queued = 0
    async with in_transaction() as conn:
        for parsed, team in zip(events, teams, strict=True):
            key = _dedup(parsed.dedup_key)
            if await WebhookEvent.filter(source=source.name, dedup_key=key).using_db(conn).exists():
                continue
            row = await WebhookEvent.create(
                using_db=conn,
                source=source.name,
                dedup_key=key,
                type=parsed.type,
                status=ROUTED if team is not None else UNROUTED,
                team_id=team.id if team is not None else None,
                payload=parsed.payload,
                phone_number=parsed.phone_number,
                agent_id=parsed.agent_id,
                occurred_at=parsed.occurred_at,
                received_at=now,
            )
            if source.apply is not None:
                await source.apply(
                    ApplyContext(event=parsed, team=team, connection=conn, clock=gw.clock)
                )
            jobs = jobs_for(row, handlers, settings, now)
            if jobs:
                await Job.bulk_create(jobs, using_db=conn)
                queued += len(jobs)
            new += 1
    return new, queued


async def store_with_dedup(
    source: WebhookSource, events: list[ParsedEvent], teams: list[Team | None], gw: Any
) -> tuple[int, int]:
    """Two identical deliveries racing: the loser's insert hits the unique index, its
    transaction rolls back, and the retry sees the winner's committed row."""
    for attempt in range(3):
        try:
            return await _store(source, events, teams, gw)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("webhook %s: concurrent duplicate, re-checking", source.name)
    return 0, 0  # pragma: no cover


async def handle(source: WebhookSource) -> Response:
    """The Quart view for one source."""
    gw = current_app.extensions["gateway"]
    try:
        body = await read_body(request, source.max_body_bytes)
    except PayloadTooLarge:
        _count(source, "too_large")
        raise
    req = build_request(request, body, source, gw)
    try:
        ok = await await_me_maybe(source.verify(req))
    except Unauthorized:
        ok = False
    if not ok:
        _count(source, "unauthorized")
        log.warning("webhook %s: invalid signature, refused", source.name)
        raise Unauthorized("Invalid signature")
    events = list(await await_me_maybe(source.parse(req)) or [])
    try:
        teams = [await _team_of(e) for e in events]
        new, queued = await store_with_dedup(source, events, teams, gw)
    except GatewayError:
        raise
    except DB_ERRORS as exc:
        _count(source, "failed")
        log.error("webhook %s: not stored (%s); answering 503", source.name, type(exc).__name__)
        raise ServiceUnavailable("Could not store the event; retry later") from None
    _count(source, "received")
    if new < len(events):
        _count(source, "duplicate")
    if queued:
        # Only when there is work: waking the worker costs claim queries.
        notify(current_app)
    if source.respond is not None:
        return await await_me_maybe(source.respond(req, events, teams))
    # The same answer for a duplicate: the sender only needs to know it may stop.
    return jsonify({"received": len(events)})
