"""Events: what handlers subscribe to, the typed payloads of the catalogue, and emitting
events from code.

- :class:`EventHandler` / :class:`JobContext`: a plugin's handler, run as a durable job
  for every stored event whose type it wants (``register_event_handlers``).
- :class:`EventPayload`: base of the typed payloads listed in docs/events.md (the voice
  ones are in :mod:`gateway.calls.events`).
- :func:`emit_event`: store an event produced by code (a task, a handler, a
  reconciliation) with the same dedup and jobs as a received webhook's.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover - annotations only (these modules import this one)
    import aiohttp
    from quart import Quart

    from gateway.clock import Clock
    from gateway.config import GatewayConfig
    from gateway.jobs.models import Job
    from gateway.sync.session import ProviderSession
    from gateway.webhooks.models import WebhookEvent


class RetryLater(Exception):
    """Raise from a handler to be retried after ``seconds`` (e.g. a 429's Retry-After).

    :param count_attempt: ``False`` for a wait that is not a failure (a rate limiter
        with no free slot, a provider's throttling): the attempt is given back, so the
        wait never brings the job closer to being dead-lettered, and nothing is added to
        its history.
    """

    def __init__(self, seconds: float, reason: str = "", *, count_attempt: bool = True) -> None:
        super().__init__(reason or f"retry in {seconds}s")
        self.seconds = seconds
        self.count_attempt = count_attempt


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help: the job is dead-lettered now."""


@dataclass
class JobContext:
    """What a handler receives.

    :param event: the stored event row (``.type``, ``.payload``, ``.team_id``, ...).
    :param job: the job row (``.attempts`` counts this try).
    :param app: the Quart app (``app.extensions``).
    :param config: the gateway configuration.
    :param http: the shared aiohttp session.
    :param clock: the gateway clock.

    The worker runs every handler inside an app context of ``app``, so calls that need
    one (``gateway.oauth.get_access_token(team, provider)``) work as documented.
    """

    event: WebhookEvent
    job: Job
    app: Quart
    config: GatewayConfig
    http: aiohttp.ClientSession
    clock: Clock

    async def access_token(self, provider: str, *, rejected: str | None = None) -> str:
        """A valid access token of the event's team for ``provider`` (refreshed when due,
        or when ``rejected`` is the token the provider just answered 401 to).

        :raises gateway.oauth.NotConnected: / ``ReconnectRequired`` / ``TokenUnavailable``
        """
        from gateway.oauth.tokens import get_access_token

        team_id = self._team_id(provider)
        return await get_access_token(team_id, provider, rejected=rejected, app=self.app)

    def provider_session(self, provider: str, **options: Any) -> ProviderSession:
        """A :class:`gateway.sync.ProviderSession` for the event's team: rate-limited,
        token-refreshing HTTP to ``provider``'s API (see docs/sync.md)."""
        from gateway.sync.session import ProviderSession

        return ProviderSession(self.app, self._team_id(provider), provider, **options)

    def _team_id(self, provider: str) -> int:
        if self.event.team_id is None:  # retrying cannot give the event a team
            raise PermanentFailure(f"event {self.event.id} has no team, so no {provider} token")
        return self.event.team_id


@dataclass(frozen=True)
class EventHandler:
    """:param name: unique, e.g. ``"acme_voice.download_recording"``.
    :param event_types: exact types or shell-style patterns (``"voice.call.*"``).
    :param handler: ``async (JobContext) -> None``; raise to retry with backoff.
    :param max_attempts: overrides the gateway default.
    """

    name: str
    event_types: tuple[str, ...]
    handler: Callable[[JobContext], Awaitable[None]]
    max_attempts: int | None = None

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.event_types)


@dataclass(frozen=True)
class Emitted:
    """What storing one event emitted by code did.

    :param event_id: the event row (the one stored earlier, for a duplicate).
    :param new: ``False`` when ``(source, dedup_key)`` was already stored: nothing was
        queued again.
    :param jobs: jobs queued for it, one per interested handler.
    """

    event_id: int
    new: bool
    jobs: int


# --- typed payloads -----------------------------------------------------------------


class EventPayload(BaseModel):
    """Base of the typed payloads of the catalogue (docs/events.md).

    A subclass names its type in ``EVENT_TYPE`` and says what makes one event unique in
    :meth:`dedup_key`; a handler reads its event with
    ``VoiceCallAnalyzed.model_validate(ctx.event.payload)``. Unknown keys are ignored, so
    a handler keeps working when a later gateway adds fields.
    """

    model_config = ConfigDict(extra="ignore")

    EVENT_TYPE: ClassVar[str] = ""

    def dedup_key(self) -> str:
        """What makes this event unique within its source (override)."""
        raise NotImplementedError(f"{type(self).__name__} has no dedup key; pass dedup_key=")


# --- emitting from code ---------------------------------------------------------------


def _app_and_gateway(app: Any) -> tuple[Any, Any]:
    """``(quart app or None, Gateway)`` from a Quart app or a Gateway."""
    extensions = getattr(app, "extensions", None)
    if extensions is not None:
        return app, extensions["gateway"]
    return None, app


async def emit_event(
    app: Any,
    *,
    source: str,
    payload: EventPayload | dict[str, Any],
    type: str | None = None,
    dedup_key: str | None = None,
    team_id: int | None = None,
    occurred_at: datetime | None = None,
    using_db: Any = None,
) -> Emitted:
    """Store an event that code (a task, a handler, a reconciliation) produced, exactly
    as a received webhook's: unique on ``(source, dedup_key)``, one job per handler that
    wants ``type``, visible in ``/api/events``, replayable.

    :param app: the Quart app (``JobContext.app``, the app a task was given) or its
        Gateway (then the worker is not woken; it finds the jobs at its next poll).
    :param source: who emits, e.g. ``"acme_voice.reconcile"``; dedup keys are unique
        per source.
    :param payload: an :class:`EventPayload` (its ``EVENT_TYPE`` and ``dedup_key()``
        are the defaults of ``type`` and ``dedup_key``) or a JSON-serialisable dict.
    :param type: the event type handlers subscribe to.
    :param dedup_key: emitting the same ``(source, dedup_key)`` again stores nothing and
        queues nothing (``Emitted.new`` is ``False``).
    :param team_id: the team the event belongs to; ``None`` stores it ``unrouted``.
    :param occurred_at: when it happened (default: unknown).
    :param using_db: join this transaction instead of committing one. Then the jobs
        exist once *your* transaction commits: call :func:`wake_workers` after it (inside
        a webhook's ``apply`` use ``ctx.emit(...)``, which does that for you).
    :raises ValueError: no type or no dedup key.
    """
    from gateway.webhooks.source import ParsedEvent
    from gateway.webhooks.store import store_emitted

    if isinstance(payload, EventPayload):
        type = type or payload.EVENT_TYPE
        dedup_key = dedup_key or payload.dedup_key()
        data = payload.model_dump(mode="json")
    else:
        data = dict(payload)
    if not type or not dedup_key:
        raise ValueError("an emitted event needs a type and a dedup_key")
    event = ParsedEvent(type=type, dedup_key=dedup_key, payload=data, occurred_at=occurred_at)

    async def store(gw: Any, conn: Any) -> list[Emitted]:
        return [await store_emitted(gw, source=source, event=event, team_id=team_id, conn=conn)]

    [emitted] = await _stored(app, using_db, store)
    return emitted


async def emit_events(
    app: Any,
    *,
    source: str,
    payloads: Sequence[EventPayload],
    team_ids: Sequence[int | None],
    using_db: Any = None,
) -> list[Emitted]:
    """:func:`emit_event` for many typed payloads at once: one transaction, one insert
    for the events and one for their jobs (a task emitting an event per row of a batch
    of hundreds). Types and dedup keys come from the payloads; a duplicate's
    ``Emitted`` has ``new=False`` and ``event_id=0``.

    :param team_ids: the team of each payload, in the same order.
    :param using_db: join this transaction (then call :func:`wake_workers` after your
        commit), as with :func:`emit_event`.
    """
    from gateway.webhooks.source import ParsedEvent
    from gateway.webhooks.store import store_emitted_many

    items = [
        (
            ParsedEvent(
                type=payload.EVENT_TYPE,
                dedup_key=payload.dedup_key(),
                payload=payload.model_dump(mode="json"),
            ),
            team_id,
        )
        for payload, team_id in zip(payloads, team_ids, strict=True)
    ]
    if not items:
        return []

    async def store(gw: Any, conn: Any) -> list[Emitted]:
        return await store_emitted_many(gw, source=source, items=items, conn=conn)

    return await _stored(app, using_db, store)


async def _stored(
    app: Any, using_db: Any, store: Callable[[Any, Any], Awaitable[list[Emitted]]]
) -> list[Emitted]:
    """``store(gateway, conn)`` in ``using_db``'s transaction, else in its own, after
    whose commit the workers are woken when jobs were queued."""
    from tortoise.transactions import in_transaction

    quart_app, gw = _app_and_gateway(app)
    if using_db is not None:
        return await store(gw, using_db)
    async with in_transaction() as conn:
        emitted = await store(gw, conn)
    if quart_app is not None and any(e.jobs for e in emitted):
        wake_workers(quart_app)
    return emitted


def wake_workers(app: Any) -> None:
    """Tell the job workers (this process's at once, others' through PostgreSQL) that
    jobs were committed. Call it after committing a transaction you passed to
    :func:`emit_event` as ``using_db``."""
    from gateway.jobs.worker import notify

    notify(app)


# --- the catalogue in docs/events.md ---------------------------------------------------


def payload_table(model: type[BaseModel]) -> str:
    """A Markdown table of a payload model's fields (``field | type | meaning``): what
    docs/events.md shows for each typed event, checked by the tests against the models
    (``python -m gateway.events`` prints every table of the core's catalogue)."""
    schema = model.model_json_schema()
    lines = ["| field | type | meaning |", "|---|---|---|"]
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        kind = _schema_type(prop)
        if name not in required and "null" not in kind.split(" or "):
            kind += " (optional)"
        meaning = " ".join(str(prop.get("description", "")).split())
        lines.append(f"| `{name}` | {kind} | {meaning} |")
    return "\n".join(lines)


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "object " + prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        # " or ", not "|": a bar would split the Markdown table's cell.
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " / ".join(f'"{v}"' for v in prop["enum"])
    if "const" in prop:
        return f'"{prop["const"]}"'
    kind = prop.get("type", "any")
    if prop.get("format") == "date-time":
        return "datetime (ISO 8601)"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return "object of id → " + _schema_type(prop["additionalProperties"])
    if kind == "array" and isinstance(prop.get("items"), dict):
        return "list of " + _schema_type(prop["items"])
    return str(kind)


if __name__ == "__main__":  # pragma: no cover - a helper for editing docs/events.md
    from gateway.calls.events import CATALOGUE, CollectedValue, EvaluationResult

    for event_type, model in CATALOGUE.items():
        print(f"### `{event_type}`\n\n{payload_table(model)}\n")
    for nested in (CollectedValue, EvaluationResult):
        print(f"#### {nested.__name__}\n\n{payload_table(nested)}\n")
