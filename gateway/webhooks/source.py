"""What a plugin hands the core to receive a webhook (the contract; the engine lives in
:mod:`gateway.webhooks.ingest`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from werkzeug.datastructures import MultiDict

from gateway.contract.route import WebhookContract

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from tortoise.backends.base.client import BaseDBAsyncClient

    from gateway.app import Gateway
    from gateway.clock import Clock
    from gateway.events import Emitted
    from gateway.identity.models import Team


class Hasher(Protocol):
    """What a streaming source's signer returns: fed every body chunk as it arrives
    (``hmac.HMAC`` and ``hashlib`` objects qualify)."""

    def update(self, data: bytes, /) -> None: ...


@dataclass
class SpooledBody:
    """A streamed body (see :class:`Streaming`): in a temporary owner-only file that
    exists until the response is sent, never in memory."""

    path: Path
    size: int
    hashers: Sequence[Any]  # the signer's hashers, fed with the whole body

    def open(self) -> IO[bytes]:
        return self.path.open("rb")

    def read(self) -> bytes:
        """The whole body; only for bodies known to be small (checked by the caller)."""
        return self.path.read_bytes()


@dataclass
class WebhookRequest:
    """The request as the plugin sees it: raw bytes plus the *public* URL the sender
    used (rebuilt from ``gateway.public_url``, never from the Host header).

    For a streaming source (:attr:`WebhookSource.streaming`) ``body`` is empty and
    ``spool`` holds the body; the signer sees the request before any of it was read.
    """

    method: str
    public_url: str  # scheme://host[:port]/path?query, as the sender signed it
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    form: MultiDict[str, str] = field(default_factory=MultiDict)  # parsed form body
    received_at: datetime | None = None
    spool: SpooledBody | None = None

    def json(self) -> Any:
        import json

        if self.spool is not None and not self.body:
            return json.loads(self.spool.read())
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
    team: Team | None
    connection: BaseDBAsyncClient  # the transaction: pass as ``using_db=`` to every query
    clock: Clock
    is_duplicate: bool = False
    gateway: Gateway = None  # type: ignore[assignment]  # always given by the core
    source: str = ""  # the source's name
    queued: int = 0  # jobs of the events emitted through :meth:`emit`

    async def emit(
        self,
        payload: Any,
        *,
        type: str | None = None,
        dedup_key: str | None = None,
        source: str | None = None,
        team_id: int | object | None = ...,
        occurred_at: datetime | None = None,
    ) -> Emitted:
        """Store another event in this same transaction, e.g. the neutral
        ``voice.call.analyzed`` next to the provider's own webhook event. Its jobs are
        committed with the webhook and the worker is woken after the commit.

        Arguments as :func:`gateway.events.emit_event`; ``source`` defaults to this
        webhook source's name and ``team_id`` to this event's team.
        :return: :class:`gateway.events.Emitted`.
        """
        from gateway.events import emit_event

        if team_id is ...:
            team_id = self.team.id if self.team is not None else None
        emitted = await emit_event(
            self.gateway,
            source=source or self.source,
            payload=payload,
            type=type,
            dedup_key=dedup_key,
            team_id=team_id,  # type: ignore[arg-type]
            occurred_at=occurred_at,
            using_db=self.connection,
        )
        self.queued += emitted.jobs
        return emitted


@dataclass(frozen=True)
class Streaming:
    """Receive large bodies in bounded memory: the body is written to a temporary file
    in ``data_dir`` as it arrives (owner-only, removed once the response is sent), and
    the signature is computed on the way, so the body is never held in memory.

    :param signer: ``(WebhookRequest without body) -> Sequence[Hasher] | None``, called
        with the headers before the body is read: the hashers to feed with every body
        chunk (e.g. one HMAC per accepted secret, already fed with a header-derived
        prefix). ``None`` or empty answers 401 without reading the body. ``verify``
        then finds them, complete, in ``request.spool.hashers``.
    :param timeout_seconds: the whole body must arrive within this (408 otherwise).
    """

    signer: Callable[[WebhookRequest], Sequence[Hasher] | None]
    timeout_seconds: float = 600.0


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
    :param streaming: a :class:`Streaming` for sources whose bodies are too large to
        hold in memory (audio). ``parse`` then reads ``request.spool``; it may move a
        large part out of the body (into blob storage) before the transaction, under a
        key derived from the event so a redelivery overwrites rather than duplicates.
    :param contract: the route's OpenAPI description (signature scheme, body model,
        answer): documentation only, nothing is validated before ``verify``.
    :param timeline: optional ``(stored payload) -> (status, sequence)``: what one of
        this source's events reports, as a call's timeline shows it (``GET
        /api/calls/<id>``); default: the payload's own ``status`` (else ``type``) and
        ``sequence``.
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
    streaming: Streaming | None = None
    contract: WebhookContract | None = None
    timeline: Callable[[Mapping[str, Any]], tuple[str | None, Any]] | None = None
