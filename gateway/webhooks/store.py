"""The ingestion transaction for a batch of verified webhook requests.

One transaction stores every event of the batch: the team each belongs to, the event
rows (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so a redelivery, even one racing
in another process, is recognised without an error), the source's ``apply`` for the new
ones, and one job per interested handler. The batch is usually many requests that
arrived together (see :mod:`gateway.webhooks.group_commit`); a batch of one is the same
path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tortoise.models import Model
from tortoise.transactions import in_transaction

from gateway.events import Emitted
from gateway.identity.models import PhoneNumber, Team, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.queue import QueueSettings, jobs_for
from gateway.sql import chunked, insert_returning, marks
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookSource

DEDUP_MAX = 255
_COLUMNS = (
    "source",
    "dedup_key",
    "type",
    "status",
    "team_id",
    "payload",
    "phone_number",
    "agent_id",
    "occurred_at",
    "received_at",
)


@dataclass
class Delivery:
    """One verified request's events, waiting to be stored."""

    source: WebhookSource
    events: list[ParsedEvent]


@dataclass
class Stored:
    """What storing one delivery did."""

    teams: list[Team | None] = field(default_factory=list)
    new: int = 0  # events that were not duplicates
    queued: int = 0  # jobs created for them


@dataclass
class _Row:
    """An event on its way into the table (quacks like a WebhookEvent for jobs_for).
    ``source`` is None for an event emitted by code (:func:`store_emitted`)."""

    delivery: int
    source: WebhookSource | None
    source_name: str
    event: ParsedEvent
    dedup_key: str
    team: Team | None
    team_id: int | None
    type: str
    id: int | None = None


def dedup_key(key: str) -> str:
    """Keys longer than the column are hashed, never truncated (two keys sharing a
    prefix must stay distinct)."""
    if len(key) <= DEDUP_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


async def _teams_by(conn: Any, link: type[Model], column: str, keys: set[str]) -> dict[str, Team]:
    """``{key: Team}`` for the rows of ``link`` (phone numbers, agents) whose ``column``
    is one of ``keys``: one joined statement, teams built as the ORM builds them."""
    if not keys:
        return {}
    teams, links = Team._meta.db_table, link._meta.db_table
    out: dict[str, Team] = {}
    for part in chunked(sorted(keys)):
        sql = (
            f"SELECT l.{column} AS link_key, t.* FROM {links} l "  # noqa: S608
            f"JOIN {teams} t ON t.id = l.team_id WHERE l.{column} IN {marks(conn, len(part))}"
        )
        for row in await conn.execute_query_dict(sql, list(part)):
            row = dict(row)
            out[row.pop("link_key")] = Team._init_from_db(**row)
    return out


async def _teams(events: list[ParsedEvent], conn: Any) -> list[Team | None]:
    """The team of each event, by phone number first, then by agent: two statements
    for the whole batch at most, whatever its size."""
    numbers = {e.phone_number for e in events if e.phone_number}
    by_number = await _teams_by(conn, PhoneNumber, "number", numbers)
    agents = {e.agent_id for e in events if e.agent_id and (e.phone_number or "") not in by_number}
    by_agent = await _teams_by(conn, VoiceAgent, "agent_id", agents)
    return [by_number.get(e.phone_number or "") or by_agent.get(e.agent_id or "") for e in events]


async def _insert_events(rows: list[_Row], now: Any, conn: Any) -> None:
    """Insert the rows that are new and set their ``id``; a row left with ``id`` None
    was already stored (a duplicate). One statement for the whole batch."""
    # A stable order, so two processes inserting overlapping batches take their
    # unique-index locks in the same order and cannot deadlock each other.
    ordered = sorted(rows, key=lambda r: (r.source_name, r.dedup_key))
    records = [
        (
            row.source_name,
            row.dedup_key,
            row.type,
            ROUTED if row.team_id is not None else UNROUTED,
            row.team_id,
            row.event.payload,
            row.event.phone_number,
            row.event.agent_id,
            row.event.occurred_at,
            now,
        )
        for row in ordered
    ]
    inserted = await insert_returning(
        conn,
        WebhookEvent,
        _COLUMNS,
        records,
        ("source", "dedup_key"),
        ("id", "source", "dedup_key"),
    )
    ids = {(r["source"], r["dedup_key"]): r["id"] for r in inserted}
    for row in rows:
        row.id = ids.get((row.source_name, row.dedup_key))


async def _apply(rows: list[_Row], gw: Any, conn: Any) -> list[ApplyContext]:
    """Each source's state change for its new events, in arrival order; consecutive
    events of a source with ``apply_batch`` go to it in one call. Returns the contexts
    (one per row), which count the jobs of the events an ``apply`` emitted."""
    run: list[ApplyContext] = []
    run_source: WebhookSource | None = None
    contexts: list[ApplyContext] = []

    async def flush() -> None:
        if run and run_source is not None and run_source.apply_batch is not None:
            await run_source.apply_batch(list(run))
        run.clear()

    for row in rows:
        source = row.source
        assert source is not None  # webhook rows always have their source
        ctx = ApplyContext(
            event=row.event,
            team=row.team,
            connection=conn,
            clock=gw.clock,
            gateway=gw,
            source=source.name,
        )
        contexts.append(ctx)
        if source.apply_batch is not None:
            if source is not run_source:
                await flush()
                run_source = source
            run.append(ctx)
        elif source.apply is not None:
            await flush()
            run_source = None
            await source.apply(ctx)
    await flush()
    return contexts


def _jobs(rows: list[_Row], gw: Any, now: Any) -> list[list[Job]]:
    """Unsaved jobs for each row: one per handler that wants its type."""
    handlers = list(gw.registry("register_event_handlers").values())
    settings = QueueSettings.from_config(gw.config)
    return [jobs_for(row, handlers, settings, now) for row in rows]


async def store_batch(deliveries: list[Delivery], gw: Any) -> list[Stored]:
    """Store every delivery in one transaction; returns one :class:`Stored` each, in
    order. Raises (and stores nothing) if any part fails."""
    results = [Stored() for _ in deliveries]
    events = [(i, d.source, e) for i, d in enumerate(deliveries) for e in d.events]
    if not events:
        return results
    now = gw.clock.now()
    async with in_transaction() as conn:
        teams = await _teams([e for _, _, e in events], conn)
        rows: list[_Row] = []
        seen: set[tuple[str, str]] = set()
        for (i, source, event), team in zip(events, teams, strict=True):
            results[i].teams.append(team)
            key = dedup_key(event.dedup_key)
            if (source.name, key) in seen:  # the same event twice in this batch
                continue
            seen.add((source.name, key))
            team_id = team.id if team is not None else None
            rows.append(_Row(i, source, source.name, event, key, team, team_id, event.type))
        await _insert_events(rows, now, conn)
        new = [row for row in rows if row.id is not None]
        contexts = await _apply(new, gw, conn)
        jobs: list[Job] = []
        for row, ctx, mine in zip(new, contexts, _jobs(new, gw, now), strict=True):
            results[row.delivery].new += 1
            # Jobs of events the apply emitted were inserted by it; they count for the
            # wake-up after the commit.
            results[row.delivery].queued += len(mine) + ctx.queued
            jobs.extend(mine)
        if jobs:
            await Job.bulk_create(jobs, using_db=conn)
    return results


async def store_emitted(
    gw: Any, *, source: str, event: ParsedEvent, team_id: int | None, conn: Any
) -> Emitted:
    """Store one event emitted by code (not received), inside ``conn``'s transaction:
    the same insert with dedup and the same jobs as a webhook's events. Routing is the
    caller's: ``team_id`` as given, ``unrouted`` when ``None``."""
    [emitted] = await store_emitted_many(gw, source=source, items=[(event, team_id)], conn=conn)
    if emitted.new:
        return emitted
    existing: list[Any] = (  # flat values_list: the ids themselves
        await WebhookEvent.filter(source=source, dedup_key=dedup_key(event.dedup_key))
        .using_db(conn)
        .values_list("id", flat=True)
    )
    return Emitted(event_id=existing[0], new=False, jobs=0)


async def store_emitted_many(
    gw: Any, *, source: str, items: list[tuple[ParsedEvent, int | None]], conn: Any
) -> list[Emitted]:
    """:func:`store_emitted` for many events in one statement (plus one for their
    jobs): what a task that emits one event per row of a batch uses. A key given twice
    is stored once (the second is a duplicate), as in a webhook batch."""
    now = gw.clock.now()
    rows = [
        _Row(0, None, source, event, dedup_key(event.dedup_key), None, team_id, event.type)
        for event, team_id in items
    ]
    if not rows:
        return []
    firsts: dict[str, _Row] = {}
    for row in rows:  # a later row of the same key keeps no id: a duplicate below
        firsts.setdefault(row.dedup_key, row)
    await _insert_events(list(firsts.values()), now, conn)
    new = [row for row in rows if row.id is not None]
    jobs = _jobs(new, gw, now)
    flat = [job for each in jobs for job in each]
    if flat:
        await Job.bulk_create(flat, using_db=conn)
    counts = {id(row): len(each) for row, each in zip(new, jobs, strict=True)}
    out: list[Emitted] = []
    for row in rows:
        if row.id is None:
            # A duplicate: the caller learns it was not new; its id is not looked up.
            out.append(Emitted(event_id=0, new=False, jobs=0))
        else:
            out.append(Emitted(event_id=row.id, new=True, jobs=counts[id(row)]))
    return out
