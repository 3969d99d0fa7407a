"""Call rows from out-of-order, duplicated status callbacks (provider-neutral core)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from gateway.calls.models import Call, Recording
from gateway.calls.recordings import RecordingUpdate, expiry, upsert_recording
from gateway.calls.status import CallUpdate, status_rank, upsert_call, upsert_calls
from gateway.identity.models import Team

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)  # when the gateway stores them

# One call's life as the provider emits it: (status, sequence, seconds after T0).
LIFE = [
    ("initiated", 0, 0),
    ("ringing", 1, 2),
    ("in-progress", 2, 5),
    ("completed", 3, 65),
]


def update(status: str, seq: int | None, offset: int, **kw) -> CallUpdate:
    duration = 60 if status == "completed" else None
    return CallUpdate(
        external_id=kw.pop("external_id", "CA1"),
        status=status,
        sequence=seq,
        at=T0 + timedelta(seconds=offset),
        duration_seconds=duration,
        **kw,
    )


async def apply_all(updates: list[CallUpdate]) -> Call:
    for u in updates:
        async with in_transaction() as conn:
            await upsert_call(u, using_db=conn, now=NOW)
    return await Call.get(external_id=updates[0].external_id)


def test_precedence_order():
    order = ["queued", "initiated", "ringing", "in-progress", "completed"]
    assert [status_rank(s) for s in order] == sorted(status_rank(s) for s in order)
    assert {status_rank(s) for s in ("completed", "busy", "failed", "no-answer", "canceled")} == {5}
    assert status_rank("something-new") == 0


async def test_every_arrival_order_ends_in_the_same_row(any_app):
    """All 24 orders of one call's four callbacks (with a duplicate) give one answer."""
    for n, order in enumerate(itertools.permutations(LIFE)):
        sid = f"CA{n}"
        updates = [update(s, q, o, external_id=sid) for s, q, o in order]
        call = await apply_all([*updates, updates[0]])
        assert (call.status, call.status_rank, call.last_sequence) == ("completed", 5, 3), order
        assert call.started_at == T0
        assert call.answered_at == T0 + timedelta(seconds=5)
        assert call.ended_at == T0 + timedelta(seconds=65)
        assert call.duration_seconds == 60
    assert await Call.all().count() == 24


async def test_one_batch_of_interleaved_callbacks_for_many_calls(any_app):
    """What group commit hands over: every arrival order of four calls' callbacks mixed
    in one list, half of the calls already stored. Same rows as one at a time, in a
    fixed number of queries."""
    orders = list(itertools.permutations(LIFE))[:8]
    await apply_all([update("ringing", 1, 2, external_id=f"CB{n}") for n in range(0, 8, 2)])
    lists = [
        [update(s, q, o, external_id=f"CB{n}") for s, q, o in order]
        for n, order in enumerate(orders)
    ]
    mixed = [u for batch in itertools.zip_longest(*lists) for u in batch if u is not None]
    async with in_transaction() as conn:
        await upsert_calls([*mixed, mixed[0]], using_db=conn, now=NOW)
    assert await Call.filter(external_id__startswith="CB").count() == 8
    for call in await Call.filter(external_id__startswith="CB"):
        assert (call.status, call.last_sequence, call.duration_seconds) == ("completed", 3, 60)
        assert (call.started_at, call.ended_at) == (T0, T0 + timedelta(seconds=65))
        assert call.updated_at == NOW  # the gateway's clock, not the database's


async def test_late_ringing_never_overwrites_completed(any_app):
    call = await apply_all([update("completed", 3, 65), update("ringing", 1, 2)])
    assert call.status == "completed"
    assert call.started_at == T0 + timedelta(seconds=2)  # but its timestamp still counts


async def test_sequence_number_breaks_ties_between_terminal_states(any_app):
    call = await apply_all([update("canceled", 4, 10), update("completed", 3, 65)])
    assert call.status == "canceled"
    call = await apply_all(
        [
            update("completed", 3, 65, external_id="CA2"),
            update("canceled", 4, 10, external_id="CA2"),
        ]
    )
    assert call.status == "canceled"


async def test_known_fields_are_filled_once_and_team_kept(any_app):
    team = await Team.create(name="Acme")
    call = await apply_all(
        [
            update("ringing", 1, 2, team_id=team.id, from_number="+1555", to_number="+1666"),
            update("completed", 3, 65, team_id=None, from_number="+1999"),
        ]
    )
    assert (call.team_id, call.from_number, call.to_number) == (team.id, "+1555", "+1666")


async def test_concurrent_first_callbacks_for_one_call(make_app, db_kind):
    """Two callbacks for an unseen call racing in separate transactions: no error, one row,
    the later status wins (on PostgreSQL these really overlap)."""
    await make_app(db=db_kind)

    async def one(u: CallUpdate) -> None:
        async with in_transaction() as conn:
            await upsert_call(u, using_db=conn, now=NOW)

    updates = [update(s, q, o, external_id="CAX") for s, q, o in LIFE] * 3
    await asyncio.gather(*(one(u) for u in updates))
    call = await Call.get(external_id="CAX")
    assert await Call.filter(external_id="CAX").count() == 1
    assert (call.status, call.last_sequence, call.duration_seconds) == ("completed", 3, 60)


async def test_recording_rows_link_to_call_and_never_go_back(any_app):
    team = await Team.create(name="Acme", recording_retention_days=30)
    await apply_all([update("completed", 3, 65, external_id="CAR", team_id=team.id)])

    async def rec(status: str, **kw) -> Recording:
        async with in_transaction() as conn:
            return await upsert_recording(
                RecordingUpdate(external_id="RE1", provider_status=status, **kw), using_db=conn
            )

    await rec("completed", call_external_id="CAR", source_url="https://api/x", duration_seconds=60)
    late = await rec("in-progress", source_url="https://api/other")
    assert (late.status, late.provider_status, late.source_url) == (
        "pending",
        "completed",
        "https://api/x",
    )
    assert late.team_id == team.id
    assert late.call_id == (await Call.get(external_id="CAR")).id
    assert expiry(T0, team.recording_retention_days) == T0 + timedelta(days=30)
    assert expiry(T0, 0) is None


async def test_concurrent_batches_over_the_same_calls_in_opposite_orders(make_app, db_kind):
    """Two transactions advancing the same calls, listed in opposite orders: rows are
    locked in one order, so neither deadlocks (PostgreSQL) and both land."""
    await make_app(db=db_kind)
    sids = [f"CD{n}" for n in range(6)]

    async def one(updates: list[CallUpdate]) -> None:
        async with in_transaction() as conn:
            await upsert_calls(updates, using_db=conn, now=NOW)

    ringing = [update("ringing", 1, 2, external_id=s) for s in sids]
    completed = [update("completed", 3, 65, external_id=s) for s in reversed(sids)]
    await asyncio.gather(one(ringing), one(completed))
    for call in await Call.filter(external_id__in=sids):
        assert (call.status, call.started_at) == ("completed", T0 + timedelta(seconds=2))
