"""The provider-neutral analysis of a call, written by voice-agent plugins and read by
everyone else (CRM sync, reports, the console).

Every writer is idempotent and takes ``using_db=`` (the ingestion transaction's
``ApplyContext.connection``, or any transaction), so it can run inside a webhook's
``apply``. One row per call, found by the agent's ``conversation_id`` or the telephony
``call_sid``: the personalization request knows only the call id, the post-call data
both, an audio delivery only the conversation; whichever comes first creates the row and
the others complete it (a row created by call id alone is folded into the one of its
conversation).

Joining the :class:`Call` row: a writer links it when the call row already exists (by
``call_sid``, else by ``conversation_id``) and fills ``Call.conversation_id``. When the
call row comes later, the readers join on read (:func:`analysis_for_call`) and save the
link then. That keeps the telephony status path (``upsert_calls``, the hot path) exactly
as cheap as before: it never looks at analyses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.calls.models import Call, CallAnalysis
from gateway.sql import chunked, insert_returning, marks

log = logging.getLogger("gateway.calls")

OUTCOMES = frozenset({"success", "failure", "unknown"})


class TranscriptTurn(BaseModel):
    """One turn of the conversation."""

    role: str  # "agent" | "user"
    message: str | None = None
    offset_seconds: float | None = None  # from the start of the conversation


@dataclass
class AnalysisUpdate:
    """What an agent provider says about a finished conversation. ``None`` (or empty)
    means "not said": it never erases what an earlier delivery stored."""

    conversation_id: str
    call_sid: str | None = None
    provider: str | None = None
    team_id: int | None = None
    agent_id: str | None = None
    status: str | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    transcript: list[TranscriptTurn] | None = None
    summary: str | None = None
    outcome: str | None = None  # success | failure | unknown (anything else: unknown)
    evaluation: dict[str, Any] | None = None  # {id: {"result", "rationale", ...}}
    data_collection: dict[str, Any] | None = None  # {id: {"value", "rationale", ...}}
    duration_seconds: int | None = None
    cost: float | None = None
    language: str | None = None
    dynamic_variables: dict[str, Any] | None = None
    started_at: datetime | None = None


@dataclass
class Personalization:
    """What the gateway answered when the agent asked, as the phone rang, whom it is
    talking to: the lookup's result, which plugin answered, and what was sent."""

    call_sid: str
    at: datetime
    team_id: int | None = None
    agent_id: str | None = None
    provider: str | None = None
    from_number: str | None = None  # the caller
    to_number: str | None = None  # the team's number that was called
    contact: dict[str, Any] | None = None  # what lookup_contact returned (None: nobody)
    answered_by: str | None = None  # the plugin whose lookup answered
    dynamic_variables: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class InitiationFailure:
    """A call the agent could not start (busy, no answer, ...): ``failure_reason`` is
    kept exactly as sent, including values nobody has seen yet."""

    failure_reason: str
    at: datetime
    conversation_id: str | None = None
    call_sid: str | None = None
    provider: str | None = None
    team_id: int | None = None
    agent_id: str | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    dynamic_variables: dict[str, Any] | None = None


# --- writing ---------------------------------------------------------------------------

_SKIP = {"conversation_id", "call_sid"}  # identity, handled by _locate


async def upsert_analysis(update: AnalysisUpdate, *, using_db: Any, now: datetime) -> CallAnalysis:
    """Store (or complete) the analysis of ``update.conversation_id``; applying the same
    update again changes nothing. Links the call row if it exists."""
    row = await _locate(update.conversation_id, update.call_sid, using_db, update.team_id)
    assert row is not None  # a conversation id always gets a row of its own team
    changes = {
        f.name: getattr(update, f.name)
        for f in fields(update)
        if f.name not in _SKIP and getattr(update, f.name) not in (None, {}, [])
    }
    if "transcript" in changes:
        changes["transcript"] = [
            TranscriptTurn.model_validate(t).model_dump(mode="json") for t in changes["transcript"]
        ]
    if "outcome" in changes and changes["outcome"] not in OUTCOMES:
        changes["outcome"] = "unknown"
    changes.setdefault("analyzed_at", row.analyzed_at or now)
    return await _save(row, changes, update.call_sid, using_db)


async def record_personalization(
    record: Personalization, *, using_db: Any = None, now: datetime | None = None
) -> CallAnalysis | None:
    """Keep what the personalization answered, with the call it was for (it arrives
    before the call, keyed by the call id only). The latest answer for a call wins.
    Without ``using_db`` it commits its own transaction. ``None`` when that call's
    analysis belongs to another team (nothing is stored; the log says so)."""
    if using_db is None:
        async with in_transaction() as conn:
            return await record_personalization(record, using_db=conn, now=now)
    row = await _locate(None, record.call_sid, using_db, record.team_id)
    if row is None:
        return None
    changes: dict[str, Any] = {
        "personalization": _personalization(record),
        "personalized_at": record.at,
    }
    for name in ("team_id", "agent_id", "provider", "from_number", "to_number"):
        if getattr(record, name) is not None:
            changes[name] = getattr(record, name)
    if record.from_number or record.to_number:
        changes.setdefault("direction", "inbound")
    return await _save(row, changes, record.call_sid, using_db)


async def record_personalizations(
    records: Sequence[Personalization], *, using_db: Any, now: datetime
) -> None:
    """:func:`record_personalization` for many calls in one go (a burst of answers):
    calls that have no analysis row yet, the usual case since the personalization comes
    before anything else of its call, are inserted with one statement (linked to their
    call row when it exists); the others take the one-by-one path. For one call id the
    last record wins."""
    latest = {r.call_sid: r for r in records}
    if not latest:
        return
    sids = list(latest)
    # Two reads by key, written out: the ORM's query building cost a millisecond each,
    # as much as the batch's insert.
    analyses, calls_table = CallAnalysis._meta.db_table, Call._meta.db_table
    existing: set[str] = set()
    calls: dict[str, dict[str, Any]] = {}
    for part in chunked(sids):
        within = marks(using_db, len(part))
        found = await using_db.execute_query_dict(
            f"SELECT call_sid FROM {analyses} WHERE call_sid IN {within}",  # noqa: S608
            list(part),
        )
        existing.update(row["call_sid"] for row in found)
        for c in await using_db.execute_query_dict(
            f"SELECT id, external_id, team_id FROM {calls_table} "  # noqa: S608
            f"WHERE external_id IN {within}",
            list(part),
        ):
            calls[c["external_id"]] = c
    fresh = [r for sid, r in latest.items() if sid not in existing]
    rows = []
    for r in fresh:
        call = calls.get(r.call_sid) or {}
        if call and not _same_team(r.team_id, call["team_id"]):
            _not_joined("record", r.call_sid, r.team_id, call["team_id"])
            call = {}
        inbound = "inbound" if r.from_number or r.to_number else None
        rows.append(
            (
                r.call_sid,
                r.team_id if r.team_id is not None else call.get("team_id"),
                call.get("id"),
                r.agent_id,
                r.provider,
                inbound,
                r.from_number,
                r.to_number,
                _personalization(r),
                r.at,
                *_EMPTY,
                now,
                now,
            )
        )
    done: set[str] = set()
    if rows:
        inserted = await insert_returning(
            using_db, CallAnalysis, _FRESH_COLUMNS, rows, ("call_sid",), ("call_sid",)
        )
        done = {row["call_sid"] for row in inserted}
    for sid, record in latest.items():
        if sid not in done:  # a row existed, or a concurrent transaction made one
            await record_personalization(record, using_db=using_db, now=now)


_FRESH_COLUMNS = (
    "call_sid",
    "team_id",
    "call_id",
    "agent_id",
    "provider",
    "direction",
    "from_number",
    "to_number",
    "personalization",
    "personalized_at",
    "transcript",
    "evaluation",
    "data_collection",
    "dynamic_variables",
    "created_at",
    "updated_at",
)
_EMPTY: tuple[Any, ...] = ([], {}, {}, {})  # the JSON columns' defaults


def _personalization(record: Personalization) -> dict[str, Any]:
    return {
        "contact": record.contact,
        "answered_by": record.answered_by,
        "dynamic_variables": record.dynamic_variables,
        "overrides": record.overrides,
    }


async def record_initiation_failure(
    failure: InitiationFailure, *, using_db: Any, now: datetime
) -> CallAnalysis:
    """Keep a call the agent could not start. Without any id the failure still gets its
    own row (for reports); the event that carried it is what deduplicates."""
    row = await _locate(failure.conversation_id, failure.call_sid, using_db, failure.team_id)
    if row is None:  # the call id is another team's: the failure keeps a row of its own
        row = await CallAnalysis.create(using_db=using_db)
    changes: dict[str, Any] = {
        "failure_reason": failure.failure_reason[:128],
        "failed_at": failure.at,
    }
    for name in ("provider", "team_id", "agent_id", "direction", "from_number", "to_number"):
        if getattr(failure, name) is not None:
            changes[name] = getattr(failure, name)
    if failure.dynamic_variables:
        changes["dynamic_variables"] = failure.dynamic_variables
    return await _save(row, changes, failure.call_sid, using_db)


async def attach_audio(
    conversation_id: str,
    recording_id: int,
    *,
    using_db: Any,
    provider: str | None = None,
    team_id: int | None = None,
    agent_id: str | None = None,
) -> CallAnalysis:
    """Link the stored audio of a conversation (a :class:`~gateway.calls.models.Recording`
    row) to its analysis; the audio may come before or after the transcript."""
    row = await _locate(conversation_id, None, using_db)
    assert row is not None  # found by its conversation id: never another team's
    changes: dict[str, Any] = {"audio_id": recording_id}
    for name, value in (("provider", provider), ("team_id", team_id), ("agent_id", agent_id)):
        if value is not None and getattr(row, name) is None:
            changes[name] = value
    return await _save(row, changes, None, using_db)


def _same_team(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def _not_joined(what: str, call_sid: str | None, team: int | None, other: int | None) -> None:
    log.warning(
        "call %s: the %s of team %s is not joined with team %s's (is the agent registered "
        "with one team and the number with another?)",
        call_sid,
        what,
        team,
        other,
    )


async def _locate(
    conversation_id: str | None, call_sid: str | None, conn: Any, team_id: int | None = None
) -> CallAnalysis | None:
    """The row of this conversation or call, created if new (locked on PostgreSQL).
    Rows of another team than ``team_id`` are never joined: a conversation then gets its
    own row, and a call id alone gets ``None``."""
    if not conversation_id and not call_sid:
        return await CallAnalysis.create(using_db=conn)
    cond = Q(conversation_id=conversation_id) if conversation_id else Q(call_sid=call_sid)
    if conversation_id and call_sid:
        cond |= Q(call_sid=call_sid)
    query = CallAnalysis.filter(cond).using_db(conn).order_by("id")
    rows = await query.select_for_update()
    if not rows:
        fresh = CallAnalysis(conversation_id=conversation_id, call_sid=call_sid)
        # A concurrent first delivery may win; either way the row exists afterwards.
        await CallAnalysis.bulk_create([fresh], ignore_conflicts=True, using_db=conn)
        rows = await query.select_for_update()
    by_conv = next(
        (r for r in rows if conversation_id and r.conversation_id == conversation_id), None
    )
    by_sid = next((r for r in rows if call_sid and r.call_sid == call_sid), None)
    if by_sid is not None and not _same_team(team_id, by_sid.team_id):
        _not_joined("analysis" if conversation_id else "record", call_sid, team_id, by_sid.team_id)
        if not conversation_id:
            return None
        if by_conv is None or by_conv.id == by_sid.id:
            return await CallAnalysis.create(conversation_id=conversation_id, using_db=conn)
        return by_conv
    if by_conv is None:
        assert by_sid is not None  # one of the two matched
        if conversation_id and by_sid.conversation_id not in (None, conversation_id):
            # A second conversation on one call: its own row, joined through the call.
            return await CallAnalysis.create(conversation_id=conversation_id, using_db=conn)
        if conversation_id and by_sid.conversation_id is None:
            by_sid.conversation_id = conversation_id
            await by_sid.save(update_fields=["conversation_id"], using_db=conn)
        return by_sid
    if by_sid is not None and by_sid.id != by_conv.id and by_sid.conversation_id is None:
        await _fold(by_sid, into=by_conv, conn=conn)
    if call_sid and by_conv.call_sid is None and (by_sid is None or by_sid.id != by_conv.id):
        if by_sid is None or by_sid.conversation_id is None:
            by_conv.call_sid = call_sid
            await by_conv.save(update_fields=["call_sid"], using_db=conn)
    return by_conv


_FOLDED = (
    "team_id",
    "agent_id",
    "provider",
    "direction",
    "from_number",
    "to_number",
    "personalization",
    "personalized_at",
    "failure_reason",
    "failed_at",
    "call_id",
    "audio_id",
)


async def _fold(old: CallAnalysis, *, into: CallAnalysis, conn: Any) -> None:
    """A row known only by its call id (personalization, say) joins the row of its
    conversation: what only it knew is copied, then it is deleted (freeing the id)."""
    changed = [n for n in _FOLDED if getattr(into, n) is None and getattr(old, n) is not None]
    if not into.dynamic_variables and old.dynamic_variables:
        changed.append("dynamic_variables")
    for name in changed:
        setattr(into, name, getattr(old, name))
    await old.delete(using_db=conn)
    if changed:
        await into.save(update_fields=changed, using_db=conn)


async def _save(
    row: CallAnalysis, changes: dict[str, Any], call_sid: str | None, conn: Any
) -> CallAnalysis:
    for name, value in changes.items():
        setattr(row, name, value)
    if row.call_id is None:
        call = await _find_call(call_sid or row.call_sid, row.conversation_id, conn, row.team_id)
        if call is not None:
            await _link(row, call, conn)
    await row.save(using_db=conn)
    return row


async def _find_call(
    call_sid: str | None, conversation_id: str | None, conn: Any, team_id: int | None = None
) -> Call | None:
    """The call row by call id, else by conversation id: of ``team_id`` (or of no team
    yet) only."""
    if call_sid:
        call = await Call.filter(external_id=call_sid).using_db(conn).first()
        if call is not None:
            if _same_team(team_id, call.team_id):
                return call
            _not_joined("analysis", call_sid, team_id, call.team_id)
    if conversation_id:
        call = await Call.filter(conversation_id=conversation_id).using_db(conn).first()
        if call is not None and _same_team(team_id, call.team_id):
            return call
    return None


async def _link(row: CallAnalysis, call: Call, conn: Any) -> None:
    """Point the analysis at its call (and its team), and the call at its conversation."""
    row.call_id = call.id
    if row.team_id is None and call.team_id is not None:
        row.team_id = call.team_id
    if row.conversation_id and call.conversation_id is None:
        await (
            Call.filter(id=call.id, conversation_id=None)
            .using_db(conn)
            .update(conversation_id=row.conversation_id)
        )
        call.conversation_id = row.conversation_id


# --- reading ---------------------------------------------------------------------------


def _query(using_db: Any) -> Any:
    return CallAnalysis.all().using_db(using_db)  # None: the default connection


async def analysis_by_id(analysis_id: int, *, using_db: Any = None) -> CallAnalysis | None:
    return await _query(using_db).filter(id=analysis_id).first()


async def analysis_by_conversation(
    conversation_id: str, *, using_db: Any = None
) -> CallAnalysis | None:
    return await _query(using_db).filter(conversation_id=conversation_id).first()


async def analysis_by_call_sid(call_sid: str, *, using_db: Any = None) -> CallAnalysis | None:
    return await _query(using_db).filter(call_sid=call_sid).first()


async def analysis_for_call(call: Call | int, *, using_db: Any = None) -> CallAnalysis | None:
    """The analysis of a call row: linked, or found by its call id or conversation id
    (then linked now, so the next read is direct)."""
    if isinstance(call, int):
        found = await Call.filter(id=call).using_db(using_db).first()
        if found is None:
            return None
        call = found
    cond = Q(call_id=call.id) | Q(call_sid=call.external_id)
    if call.conversation_id:
        cond |= Q(conversation_id=call.conversation_id)
    if call.team_id is not None:  # never another team's analysis of the same call id
        cond &= Q(team_id=call.team_id) | Q(team_id__isnull=True)
    row = await _query(using_db).filter(cond).order_by("id").first()
    if row is not None and row.call_id is None:
        await _link(row, call, using_db)
        await (
            CallAnalysis.filter(id=row.id, call_id=None)
            .using_db(using_db)
            .update(call_id=call.id, team_id=row.team_id)
        )
    return row


async def call_for_analysis(analysis: CallAnalysis, *, using_db: Any = None) -> Call | None:
    """The call row of an analysis, linked or found by call id or conversation id."""
    if analysis.call_id is not None:
        call_id = analysis.call_id
        return await Call.filter(id=call_id).using_db(using_db).first()
    return await _find_call(analysis.call_sid, analysis.conversation_id, using_db, analysis.team_id)


def turns(analysis: CallAnalysis) -> list[TranscriptTurn]:
    """The transcript, typed."""
    return [TranscriptTurn.model_validate(t) for t in analysis.transcript or []]
