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


async def upsert_call(update: CallUpdate, *, using_db: Any) -> Call:
    """Create or advance the call row, inside the caller's transaction.

    Safe under concurrency: the row is locked (PostgreSQL ``FOR UPDATE``; SQLite has one
    writer) and a first insert racing another uses ``ON CONFLICT DO NOTHING`` then reads
    the winner, so two first callbacks for one call never fail or overwrite each other.
    """
    query = Call.filter(external_id=update.external_id).using_db(using_db)
    call = await query.select_for_update().first()
    if call is None:
        await Call.bulk_create([_new_call(update)], ignore_conflicts=True, using_db=using_db)
        call = await query.select_for_update().first()
        if call is None:  # pragma: no cover - the row exists after the insert or conflict
            raise RuntimeError("call row vanished inside its transaction")
    changes = merge(call, update)
    if changes:
        for name, value in changes.items():
            setattr(call, name, value)
        await call.save(update_fields=[*changes, "updated_at"], using_db=using_db)
    return call


__all__ = ["TERMINAL", "CallUpdate", "merge", "status_rank", "upsert_call"]
