"""An analysis and a call join only within one team.

The analysis of a conversation is routed by the agent's team, the call row and the
personalization by the called number's team. When a misconfiguration registers the agent
with one team and the number with another, the same call id arrives for both: each team
keeps its own rows, nothing of one (a CRM contact, a transcript) is moved to or shown
with the other, and the log says why they were not joined."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from gateway.calls.analysis import (
    AnalysisUpdate,
    Personalization,
    analysis_for_call,
    call_for_analysis,
    record_personalization,
    record_personalizations,
    upsert_analysis,
)
from gateway.calls.models import Call, CallAnalysis
from gateway.calls.status import CallUpdate, upsert_call
from tests.support.identity import make_team

SID = "CA" + "7" * 32
CONV = "conv_teams_01"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CONTACT = {"name": "Jo Smith", "email": "jo@example.com"}


async def two_teams(make_app: Any, db: str) -> tuple[Any, Any]:
    await make_app(db=db)
    return await make_team("Agent's team"), await make_team("Number's team")


async def call_of(team: Any) -> Call:
    async with in_transaction() as conn:
        await upsert_call(
            CallUpdate(external_id=SID, status="completed", team_id=team.id),
            using_db=conn,
            now=T0,
        )
    return await Call.get(external_id=SID)


async def analysis_of(team: Any) -> CallAnalysis:
    async with in_transaction() as conn:
        return await upsert_analysis(
            AnalysisUpdate(
                conversation_id=CONV, call_sid=SID, team_id=team.id, summary="Booked a demo"
            ),
            using_db=conn,
            now=T0,
        )


def personalization_of(team: Any) -> Personalization:
    return Personalization(call_sid=SID, at=T0, team_id=team.id, contact=CONTACT)


async def test_an_analysis_never_joins_another_teams_call(make_app, db_kind, caplog):
    agents, numbers = await two_teams(make_app, db_kind)
    call = await call_of(numbers)
    with caplog.at_level(logging.WARNING, logger="gateway.calls"):
        row = await analysis_of(agents)
    assert row.call_id is None and row.team_id == agents.id
    assert (await Call.get(id=call.id)).conversation_id is None
    assert await analysis_for_call(call) is None
    assert await call_for_analysis(row) is None
    assert any("not joined" in r.getMessage() for r in caplog.records)


async def test_a_call_row_arriving_later_does_not_join_another_teams_analysis(make_app, db_kind):
    agents, numbers = await two_teams(make_app, db_kind)
    row = await analysis_of(agents)
    call = await call_of(numbers)
    assert await analysis_for_call(call) is None
    assert (await CallAnalysis.get(id=row.id)).call_id is None


async def test_one_teams_personalization_is_not_folded_into_anothers_analysis(make_app, db_kind):
    agents, numbers = await two_teams(make_app, db_kind)
    await record_personalization(personalization_of(numbers), now=T0)
    analysis = await analysis_of(agents)
    assert analysis.team_id == agents.id
    assert analysis.personalization is None  # the other team's contact stays there
    kept = await CallAnalysis.get(call_sid=SID)
    assert kept.id != analysis.id
    assert (kept.team_id, kept.personalization["contact"]) == (numbers.id, CONTACT)


async def test_a_personalization_for_another_teams_analysis_is_not_stored_there(
    make_app, db_kind, caplog
):
    agents, numbers = await two_teams(make_app, db_kind)
    analysis = await analysis_of(agents)
    with caplog.at_level(logging.WARNING, logger="gateway.calls"):
        await record_personalization(personalization_of(numbers), now=T0)
    row = await CallAnalysis.get(id=analysis.id)
    assert (row.team_id, row.personalization) == (agents.id, None)
    assert any("not joined" in r.getMessage() for r in caplog.records)


async def test_a_batch_of_personalizations_joins_only_its_own_teams_calls(make_app, db_kind):
    agents, numbers = await two_teams(make_app, db_kind)
    call = await call_of(numbers)
    own = Personalization(call_sid=SID, at=T0, team_id=numbers.id)
    other_sid = "CA" + "8" * 32
    async with in_transaction() as conn:
        await upsert_call(
            CallUpdate(external_id=other_sid, status="ringing", team_id=numbers.id),
            using_db=conn,
            now=T0,
        )
        foreign = Personalization(call_sid=other_sid, at=T0, team_id=agents.id)
        await record_personalizations([own, foreign], using_db=conn, now=T0)
    assert (await CallAnalysis.get(call_sid=SID)).call_id == call.id
    assert (await CallAnalysis.get(call_sid=other_sid)).call_id is None
