"""The provider-neutral call analysis: stored from a post-call webhook, joined to the
telephony call row whichever arrives first, idempotent, with the personalization kept
and the neutral events emitted in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from gateway.calls.analysis import (
    AnalysisUpdate,
    Personalization,
    analysis_by_call_sid,
    analysis_by_conversation,
    analysis_by_id,
    analysis_for_call,
    attach_audio,
    call_for_analysis,
    record_personalization,
    turns,
    upsert_analysis,
)
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.calls.status import CallUpdate, upsert_call, upsert_calls
from gateway.identity import service
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.webhooks.models import WebhookEvent
from tests.support.agent_plugin import NAME, AgentPlugin, fixture, signed
from tests.support.identity import make_team

SID = "CA0123456789abcdef0123456789abcdef"
CONV = "conv_01jxyz0123456789abcdef"
AGENT = "agent_7401k5abcdefgh"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PATH = "/api/webhooks/agent/post-call"


async def agent_app(make_app: Any, db: str) -> tuple[Any, AgentPlugin]:
    plugin = AgentPlugin()
    return await make_app(db=db, extra_plugins=[(NAME, plugin)]), plugin


async def post(app: Any, payload: dict[str, Any]) -> None:
    body, headers = signed(payload)
    resp = await app.test_client().post(PATH, data=body, headers=headers)
    assert resp.status_code == 200, await resp.get_data(as_text=True)


async def team_with_agent() -> Any:
    team = await make_team("Acme")
    await service.add_voice_agent(team, AGENT, "Ava")
    await service.add_phone_number(team, "+14155550100")
    return team


async def status_callback(sid: str = SID, status: str = "completed", seq: int = 3) -> None:
    """What the telephony plugin's status webhook does to the call row."""
    async with in_transaction() as conn:
        await upsert_calls(
            [
                CallUpdate(
                    external_id=sid,
                    status=status,
                    sequence=seq,
                    at=T0,
                    duration_seconds=62,
                    direction="inbound",
                    from_number="+14155550199",
                    to_number="+14155550100",
                )
            ],
            using_db=conn,
            now=T0,
        )


async def test_analysis_stored_from_the_webhook_then_joined_to_a_later_call_row(make_app, db_kind):
    app, plugin = await agent_app(make_app, db_kind)
    team = await team_with_agent()
    await post(app, fixture("post_call_transcription"))

    row = await analysis_by_conversation(CONV)
    assert row is not None and row.call_id is None  # no call row yet
    assert (row.team_id, row.agent_id, row.call_sid, row.provider) == (team.id, AGENT, SID, NAME)
    assert (row.status, row.outcome, row.duration_seconds, row.language) == (
        "done",
        "success",
        62,
        "en",
    )
    assert row.cost == 415
    assert row.summary.startswith("The caller booked")
    assert row.started_at == datetime.fromtimestamp(1767272400, UTC)
    assert row.dynamic_variables == {"customer_name": "Jo Smith", "company": "Acme"}
    assert row.data_collection["seats"]["value"] == 12
    assert [t.role for t in turns(row)] == ["agent", "user", "agent", "agent"]
    assert turns(row)[2].message is None and turns(row)[1].offset_seconds == 4

    # The telephony status callback comes later: its hot path does not look for the
    # analysis; reading the call finds it and links it.
    await status_callback()
    call = await Call.get(external_id=SID)
    found = await analysis_for_call(call)
    assert found is not None and found.id == row.id
    row = await analysis_by_id(row.id)
    assert row.call_id == call.id
    call = await Call.get(external_id=SID)
    assert call.conversation_id == CONV
    assert (await call_for_analysis(row)).id == call.id
    assert await analysis_for_call(call.id) is not None

    # The CRM-like handler got the typed payload.
    await run_pending_jobs(app)
    [event] = plugin.analyzed
    assert event.conversation_id == CONV and event.analysis_id == row.id
    assert event.team_id == team.id and event.call_sid == SID and event.call_id is None
    assert (event.direction, event.from_number, event.to_number) == (
        "inbound",
        "+14155550199",
        "+14155550100",
    )
    assert event.outcome == "success" and event.duration_seconds == 62
    assert event.data_collection["meeting_day"].value == "Tuesday"
    assert event.data_collection["seats"].rationale == "Twelve people."
    assert event.evaluation["booked_meeting"].result == "success"
    assert event.transcript_turns == 4
    # The full transcript is one read away.
    assert len(turns(await analysis_by_id(event.analysis_id))) == 4


async def test_call_row_first_then_analysis(make_app, db_kind):
    app, plugin = await agent_app(make_app, db_kind)
    team = await team_with_agent()
    await status_callback(status="ringing", seq=1)
    await post(app, fixture("post_call_transcription"))

    call = await Call.get(external_id=SID)
    row = await analysis_by_conversation(CONV)
    assert row.call_id == call.id and call.conversation_id == CONV
    assert row.team_id == team.id
    await run_pending_jobs(app)
    [event] = plugin.analyzed
    assert event.call_id == call.id and event.from_number == "+14155550199"
    # The call keeps moving on its own path afterwards, link intact.
    await status_callback(status="completed", seq=3)
    call = await Call.get(external_id=SID)
    assert call.status == "completed" and call.conversation_id == CONV
    assert (await analysis_for_call(call)).id == row.id


async def test_redelivery_and_reapply_change_nothing(make_app, db_kind):
    app, plugin = await agent_app(make_app, db_kind)
    await team_with_agent()
    for _ in range(2):
        await post(app, fixture("post_call_transcription"))
    assert await CallAnalysis.all().count() == 1
    emitted = await WebhookEvent.filter(type="voice.call.analyzed")
    assert len(emitted) == 1 and emitted[0].source == f"{NAME}.post_call"
    assert await Job.filter(handler="crm.log_call").count() == 1

    before = await analysis_by_conversation(CONV)
    update = AnalysisUpdate(conversation_id=CONV, call_sid=SID, summary=before.summary)
    for _ in range(2):
        async with in_transaction() as conn:
            await upsert_analysis(update, using_db=conn, now=T0 + timedelta(days=1))
    after = await analysis_by_conversation(CONV)
    assert after.id == before.id and after.analyzed_at == before.analyzed_at
    assert after.transcript == before.transcript  # "not said" erases nothing
    await run_pending_jobs(app)
    assert len(plugin.analyzed) == 1


async def test_initiation_failure_keeps_unknown_reasons(make_app, db_kind):
    app, plugin = await agent_app(make_app, db_kind)
    team = await team_with_agent()
    await post(app, fixture("call_initiation_failure"))
    row = await analysis_by_call_sid("CAfeedfacefeedfacefeedfacefeedface")
    assert row.failure_reason == "carrier-exploded"
    assert row.conversation_id == "conv_01jfailed000000000000000"
    assert row.team_id == team.id and row.dynamic_variables == {"customer_name": "Lee"}
    await run_pending_jobs(app)
    [event] = plugin.failed
    assert event.failure_reason == "carrier-exploded"
    assert event.to_number == "+14155550123"

    # Without a conversation id, and with a reason spelt as the other docs spell it.
    failure = fixture("call_initiation_failure")
    del failure["data"]["conversation_id"]
    failure["data"]["failure_reason"] = "no_answer"
    failure["data"]["metadata"]["body"]["CallSid"] = "CA" + "1" * 32
    await post(app, failure)
    row = await analysis_by_call_sid("CA" + "1" * 32)
    assert row.failure_reason == "no_answer" and row.conversation_id is None


async def test_personalization_is_kept_with_the_call(make_app, db_kind):
    """Personalization (call id only) before the call; the audio (conversation only)
    before the transcript (both): one row in the end, nothing lost."""
    app, _plugin = await agent_app(make_app, db_kind)
    team = await team_with_agent()
    record = Personalization(
        call_sid=SID,
        at=T0,
        team_id=team.id,
        agent_id=AGENT,
        provider=NAME,
        from_number="+14155550199",
        to_number="+14155550100",
        contact={"name": "Jo Smith", "company": "Acme"},
        answered_by="acme_crm",
        dynamic_variables={"customer_name": "Jo Smith"},
        overrides={"agent": {"first_message": "Hi Jo!"}},
    )
    await record_personalization(record, now=T0)
    await record_personalization(record, now=T0)  # the provider asked twice
    recording = await Recording.create(external_id=f"audio:{CONV}", status="stored")
    async with in_transaction() as conn:
        await attach_audio(CONV, recording.id, using_db=conn, provider=NAME)
    assert await CallAnalysis.all().count() == 2

    await post(app, fixture("post_call_transcription"))
    [row] = await CallAnalysis.all()
    assert (row.conversation_id, row.call_sid, row.audio_id) == (CONV, SID, recording.id)
    assert row.personalization == {
        "contact": {"name": "Jo Smith", "company": "Acme"},
        "answered_by": "acme_crm",
        "dynamic_variables": {"customer_name": "Jo Smith"},
        "overrides": {"agent": {"first_message": "Hi Jo!"}},
    }
    assert row.personalized_at == T0
    assert row.dynamic_variables["company"] == "Acme"  # what the agent had


async def test_call_row_joined_through_the_conversation_id(any_app):
    """A call row that already knows its conversation (filled by whoever bridged it)
    joins an analysis without a telephony id, in both orders."""
    now = T0
    async with in_transaction() as conn:
        await upsert_call(
            CallUpdate(external_id="CA" + "2" * 32, status="ringing"), using_db=conn, now=now
        )
    await Call.filter(external_id="CA" + "2" * 32).update(conversation_id="conv_web_1")
    async with in_transaction() as conn:
        first = await upsert_analysis(
            AnalysisUpdate(conversation_id="conv_web_1"), using_db=conn, now=now
        )
    assert first.call_id is not None

    async with in_transaction() as conn:
        late = await upsert_analysis(
            AnalysisUpdate(conversation_id="conv_web_2"), using_db=conn, now=now
        )
        await upsert_call(
            CallUpdate(external_id="CA" + "3" * 32, status="ringing"), using_db=conn, now=now
        )
    await Call.filter(external_id="CA" + "3" * 32).update(conversation_id="conv_web_2")
    assert late.call_id is None
    call = await Call.get(external_id="CA" + "3" * 32)
    assert (await analysis_for_call(call)).id == late.id
    assert (await analysis_by_id(late.id)).call_id == call.id
