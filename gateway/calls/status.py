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
from typing import Any

from gateway.calls.models import Call

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


def _new_call(update: CallUpdate) -> Call:
    blank = Call(
        external_id=update.external_id, status="unknown", status_rank=0, last_sequence=None
    )
    for name, value in merge(blank, update).items():
        setattr(blank, name, value)
    return blank


async def upsert_calls(updates: list[CallUpdate], *, using_db: Any) -> dict[str, Call]:
    """Create or advance the call rows, inside the caller's transaction; ``updates`` are
    applied in order (several may be about one call). A handful of queries, however many
    updates: lock the rows, insert the missing ones, one bulk update.

    Safe under concurrency: the rows are locked in ``external_id`` order (PostgreSQL
    ``FOR UPDATE``; SQLite has one writer), and a first insert racing another uses
    ``ON CONFLICT DO NOTHING`` then reads the winner, so two first callbacks for one call
    never fail or overwrite each other.
    """
    firsts = {u.external_id: u for u in reversed(updates)}  # first update of each call

    def locked(ids: list[str]) -> Any:
        query = Call.filter(external_id__in=ids).using_db(using_db)
        return query.order_by("external_id").select_for_update()

    calls = {c.external_id: c for c in await locked(sorted(firsts))}
    missing = sorted(set(firsts) - set(calls))
    if missing:
        fresh = [_new_call(firsts[i]) for i in missing]
        await Call.bulk_create(fresh, ignore_conflicts=True, using_db=using_db)
        calls.update({c.external_id: c for c in await locked(missing)})
    changed: dict[str, set[str]] = {}
    for update in updates:
        call = calls[update.external_id]
        for name, value in merge(call, update).items():
            setattr(call, name, value)
            changed.setdefault(update.external_id, set()).add(name)
    if changed:
        rows = [calls[i] for i in sorted(changed)]
        fields = sorted(set().union(*changed.values()) | {"updated_at"})
        await Call.bulk_update(rows, fields=fields, using_db=using_db)
    return calls


async def upsert_call(update: CallUpdate, *, using_db: Any) -> Call:
    """:func:`upsert_calls` for one update."""
    return (await upsert_calls([update], using_db=using_db))[update.external_id]


__all__ = ["TERMINAL", "CallUpdate", "merge", "status_rank", "upsert_call", "upsert_calls"]
