"""What a plugin hands the core to receive a webhook (the contract; the engine lives in
:mod:`gateway.webhooks.ingest`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict


@dataclass
class WebhookRequest:
    """The request as the plugin sees it: raw bytes plus the *public* URL the sender
    used (rebuilt from ``gateway.public_url``, never from the Host header)."""

    method: str
    public_url: str  # scheme://host[:port]/path?query, as the sender signed it
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    form: MultiDict[str, str] = field(default_factory=MultiDict)  # parsed form body
    received_at: datetime | None = None

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class ParsedEvent:
    """One event out of a webhook request.

    :param type: dotted event type, e.g. ``"voice.call.status"``; handlers subscribe to it.
    :param dedup_key: unique within the source; a second delivery with the same key is
        acknowledged and not processed again.
    :param payload: JSON-serialisable data stored with the event and given to handlers.
    :param phone_number: the E.164 number the event is about on the team's side (the
        called number); the core finds the team through the registered phone numbers.
    :param agent_id: a voice-agent id; the core finds the team through registered agents.
    An event whose team cannot be found is stored as ``unrouted``, never dropped.
    """

    type: str
    dedup_key: str
    payload: dict[str, Any]
    phone_number: str | None = None
    agent_id: str | None = None
    occurred_at: datetime | None = None


@dataclass
class ApplyContext:
    """Given to :attr:`WebhookSource.apply` inside the ingestion transaction."""

    event: ParsedEvent
    team: Any  # gateway.identity.models.Team | None
    connection: Any  # the Tortoise transaction: pass as ``using_db=`` to every query
    clock: Any
    is_duplicate: bool = False


@dataclass
class WebhookSource:
    """A signed webhook endpoint.

    :param name: unique, e.g. ``"acme_voice.status"``.
    :param path: mounted at ``/api/webhooks/<path>``, e.g. ``"acme/status"``.
    :param verify: ``(WebhookRequest) -> bool`` (may be async), run on the raw request
        before anything is parsed. ``False`` (or raising ``Unauthorized``) answers 401.
    :param parse: ``(WebhookRequest) -> list[ParsedEvent]`` (may be async). Raising
        ``gateway.errors.ValidationError`` answers 400.
    :param apply: optional ``(ApplyContext) -> None`` (async), the cheap state change made
        in the same transaction as the event (e.g. upserting the call row). Not called
        for duplicates. It may run again if its transaction rolls back (a batch is retried
        one delivery at a time), so it must change nothing outside the transaction.
    :param apply_batch: optional ``(list[ApplyContext]) -> None`` (async), used instead
        of ``apply`` when set: the new events of several requests stored in one
        transaction, in arrival order, so the state change can be one query per batch.
    :param respond: optional ``(WebhookRequest, events, teams) -> quart Response`` (may be
        async), built after the commit; default ``200 {"received": n}``.
    :param max_body_bytes: this route's body limit (413 above it).
    :param body_timeout_seconds: the whole body must arrive within this (408 after it):
        a sender that announces a body and trickles it cannot hold a connection. Raise
        it for a source that uploads large bodies (recordings, audio).
    :param form: parse ``application/x-www-form-urlencoded`` bodies into ``request.form``.
    """

    name: str
    path: str
    verify: Callable[[WebhookRequest], bool | Awaitable[bool]]
    parse: Callable[[WebhookRequest], list[ParsedEvent] | Awaitable[list[ParsedEvent]]]
    apply: Callable[[ApplyContext], Awaitable[None]] | None = None
    apply_batch: Callable[[list[ApplyContext]], Awaitable[None]] | None = None
    respond: Callable[..., Any] | None = None
    max_body_bytes: int = 1024 * 1024
    body_timeout_seconds: float = 10.0
    methods: tuple[str, ...] = ("POST",)
    form: bool = True
