"""Call state from out-of-order, possibly duplicated status callbacks.

Telephony providers send one HTTP request per call-progress event and do not promise
they arrive in order, so the stored status only ever moves forward:
queued < initiated < ringing < in-progress < (completed | busy | failed | no-answer |
canceled). Within one rank the event's sequence number decides. Everything else is
merged so that no callback, whatever its position, erases what an earlier one taught.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from gateway.calls.models import Call
from gateway.sql import chunked, insert_returning, marks, python_values, update_many

TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_RANKS = {"queued": 1, "initiated": 2, "ringing": 3, "in-progress": 4}
# Fields copied only while still unknown: the first callback that knows them wins.
_FILL_ONCE = ("team_id", "account_id", "direction", "from_number", "to_number", "agent_id")


def status_rank(status: str) -> int:
    """Position of ``status`` in the precedence order; 0 for a status we do not know."""
    if status in TERMINAL:
        return 5
    return _RANKS.get(status, 0)


@dataclass
class CallUpdate:
    """What one callback says about a call. ``None`` means "this callback does not say"."""

    external_id: str
    status: str
    sequence: int | None = None
    at: datetime | None = None  # when the event happened (provider timestamp or receipt)
    duration_seconds: int | None = None
    team_id: int | None = None
    account_id: str | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    agent_id: str | None = None


def merge(call: Any, update: CallUpdate) -> dict[str, Any]:
    """The field changes ``update`` makes to ``call`` (any object with Call's attributes).

    Pure, so precedence can be tested without a database.
    """
    changes: dict[str, Any] = {}
    new_rank, cur_rank = status_rank(update.status), call.status_rank or 0
    seq, last_seq = update.sequence, call.last_sequence
    newer = seq is not None and (last_seq is None or seq > last_seq)
    if new_rank and (new_rank > cur_rank or (new_rank == cur_rank and newer)):
        if update.status != call.status or new_rank != cur_rank:
            changes["status"], changes["status_rank"] = update.status, new_rank
    if newer:
        changes["last_sequence"] = seq
    if update.at is not None:
        if call.started_at is None or update.at < call.started_at:
            changes["started_at"] = update.at
        if update.status == "in-progress" and call.answered_at is None:
            changes["answered_at"] = update.at
        if update.status in TERMINAL and call.ended_at is None:
            changes["ended_at"] = update.at
    if update.duration_seconds is not None and update.status in TERMINAL:
        if call.duration_seconds != update.duration_seconds:
            changes["duration_seconds"] = update.duration_seconds
    for name in _FILL_ONCE:
        value = getattr(update, name)
        if value is not None and getattr(call, name) is None:
            changes[name] = value
    return changes


_STATE = (
    "status",
    "status_rank",
    "last_sequence",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_seconds",
    *_FILL_ONCE,
)


def _blank(external_id: str) -> SimpleNamespace:
    state = SimpleNamespace(**dict.fromkeys(_STATE), external_id=external_id)
    state.status, state.status_rank = "unknown", 0
    return state


async def _locked(ids: list[str], conn: Any) -> dict[str, SimpleNamespace]:
    """The rows' state, locked until the transaction ends (PostgreSQL ``FOR UPDATE``, in
    ``external_id`` order so two transactions cannot deadlock; SQLite has one writer)."""
    columns = ("id", "external_id", *_STATE)
    lock = " FOR UPDATE" if conn.capabilities.dialect == "postgres" else ""
    out: dict[str, SimpleNamespace] = {}
    for part in chunked(ids):
        sql = (
            f"SELECT {', '.join(columns)} FROM {Call._meta.db_table} "  # noqa: S608
            f"WHERE external_id IN {marks(conn, len(part))} ORDER BY external_id{lock}"
        )
        for r in await conn.execute_query_dict(sql, list(part)):
            out[r["external_id"]] = SimpleNamespace(**python_values(Call, r, columns))
    return out


async def upsert_calls(updates: list[CallUpdate], *, using_db: Any, now: datetime) -> None:
    """Create or advance the call rows, inside the caller's transaction; ``updates`` are
    applied in order (several may be about one call). Three statements at most, however
    many updates: read and lock the rows, insert the new calls, update the others.

    Safe under concurrency: the rows are locked, and a first insert racing another
    transaction's uses ``ON CONFLICT DO NOTHING``, then reads and advances the winner's
    row, so two first callbacks for one call never fail or overwrite each other.
    """
    conn = using_db
    ids = sorted({u.external_id for u in updates})
    calls = await _locked(ids, conn)
    fresh = {i: _blank(i) for i in ids if i not in calls}
    for update in updates:
        if update.external_id in fresh:
            state = fresh[update.external_id]
            for name, value in merge(state, update).items():
                setattr(state, name, value)
    if fresh:
        columns: tuple[str, ...] = ("external_id", *_STATE, "created_at", "updated_at")
        records = [(i, *(getattr(s, c) for c in _STATE), now, now) for i, s in fresh.items()]
        inserted = await insert_returning(
            conn, Call, columns, records, ("external_id",), ("external_id",)
        )
        done = {r["external_id"] for r in inserted}
        lost = [i for i in fresh if i not in done]  # another transaction created it first
        if lost:
            calls.update(await _locked(lost, conn))
    changed: set[str] = set()
    for update in updates:
        call = calls.get(update.external_id)
        if call is None:  # inserted above, already in its final state
            continue
        for name, value in merge(call, update).items():
            setattr(call, name, value)
            changed.add(update.external_id)
    if changed:
        columns = (*_STATE, "updated_at")
        rows = [
            (*(getattr(calls[i], c) for c in _STATE), now, calls[i].id) for i in sorted(changed)
        ]
        await update_many(conn, Call, columns, "id", rows)


async def upsert_call(update: CallUpdate, *, using_db: Any, now: datetime) -> None:
    """:func:`upsert_calls` for one update."""
    await upsert_calls([update], using_db=using_db, now=now)


__all__ = ["TERMINAL", "CallUpdate", "merge", "status_rank", "upsert_call", "upsert_calls"]
