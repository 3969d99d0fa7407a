"""``record_personalizations``: many answers in one go, the same result as recording
them one by one (new calls inserted at once, known ones completed, call rows linked)."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from gateway.calls.analysis import (
    AnalysisUpdate,
    Personalization,
    analysis_by_call_sid,
    record_personalizations,
    upsert_analysis,
)
from gateway.calls.models import Call, CallAnalysis
from tests.support.identity import make_team

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def answer(sid: str, name: str, team_id: int | None = None) -> Personalization:
    return Personalization(
        call_sid=sid,
        at=T0,
        team_id=team_id,
        agent_id="agent_1",
        provider="voice",
        from_number="+14155550199",
        to_number="+14155550100",
        contact={"name": name},
        answered_by="crm",
        dynamic_variables={"customer_name": name},
        overrides={"agent": {"language": "en"}},
    )


async def test_new_known_and_repeated_calls_in_one_batch(make_app, db_kind):
    await make_app(db=db_kind)
    team = await make_team("Acme")
    call = await Call.create(external_id="CA_linked", status="ringing", team=team)
    async with in_transaction() as conn:  # a call whose analysis came first
        await upsert_analysis(
            AnalysisUpdate(conversation_id="conv_known", call_sid="CA_known", summary="Hi"),
            using_db=conn,
            now=T0,
        )
    batch = [
        answer("CA_new", "Ada"),
        answer("CA_linked", "Bo"),
        answer("CA_known", "Cy", team.id),
        answer("CA_new", "Ada Lovelace"),  # asked again: the last answer wins
    ]
    async with in_transaction() as conn:
        await record_personalizations(batch, using_db=conn, now=T0)
    assert await CallAnalysis.all().count() == 3

    new = await analysis_by_call_sid("CA_new")
    assert new.personalization == {
        "contact": {"name": "Ada Lovelace"},
        "answered_by": "crm",
        "dynamic_variables": {"customer_name": "Ada Lovelace"},
        "overrides": {"agent": {"language": "en"}},
    }
    assert (new.direction, new.from_number, new.to_number) == (
        "inbound",
        "+14155550199",
        "+14155550100",
    )
    assert new.personalized_at == T0 and new.transcript == [] and new.evaluation == {}
    assert new.conversation_id is None and new.analyzed_at is None

    linked = await analysis_by_call_sid("CA_linked")
    assert linked.call_id == call.id and linked.team_id == team.id

    known = await analysis_by_call_sid("CA_known")
    assert known.conversation_id == "conv_known" and known.summary == "Hi"
    assert known.personalization["contact"] == {"name": "Cy"} and known.team_id == team.id


async def test_an_empty_batch_writes_nothing(make_app):
    await make_app()
    async with in_transaction() as conn:
        await record_personalizations([], using_db=conn, now=T0)
    assert await CallAnalysis.all().count() == 0
