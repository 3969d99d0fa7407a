"""Post-call webhooks into the neutral call analysis: a transcription and its audio,
in either order, joined to the call row a signed Twilio status callback created; the
same conversation twice; initiation failures; unknown agents; a subscribed handler
reading the typed payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from gateway import hookimpl
from gateway.calls.analysis import analysis_by_conversation, analysis_for_call, turns
from gateway.calls.events import VoiceCallAnalyzed, VoiceCallInitiationFailed
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.events import EventHandler, JobContext
from gateway.identity.models import PhoneNumber, Team, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from tests.support.fake_elevenlabs import (
    AGENT,
    PATH,
    SECRET,
    AudioDelivery,
    conversation,
    delivery,
    send_chunked,
)

ACCOUNT = "AC" + "11" * 16
TOKEN = "twilio-auth-token-0001"
NUMBER = "+14155550100"
CALLER = "+14155550199"
SID = "CA" + "0123456789abcdef" * 2
CONV = "conv_01jxyz0123456789abcdef"


class Crm:
    """A CRM-like plugin subscribed to the neutral events."""

    def __init__(self) -> None:
        self.analyzed: list[VoiceCallAnalyzed] = []
        self.failed: list[VoiceCallInitiationFailed] = []

    async def log_call(self, ctx: JobContext) -> None:
        self.analyzed.append(VoiceCallAnalyzed.model_validate(ctx.event.payload))

    async def log_failure(self, ctx: JobContext) -> None:
        self.failed.append(VoiceCallInitiationFailed.model_validate(ctx.event.payload))

    @hookimpl
    def register_event_handlers(self, config: Any) -> list[EventHandler]:
        return [
            EventHandler("crm.log_call", ("voice.call.analyzed",), self.log_call),
            EventHandler("crm.log_failure", ("voice.call.initiation_failed",), self.log_failure),
        ]


async def start(make_app, db: str = "sqlite") -> tuple[Any, Crm]:
    crm = Crm()
    app = await make_app(
        db=db,
        plugins={
            "elevenlabs": {"webhook_secret": SECRET},
            "twilio_voice": {"account_sid": ACCOUNT, "auth_token": TOKEN},
            "crm": {},
        },
        extra_plugins=[("crm", crm)],
    )
    return app, crm


async def seed_team() -> Team:
    team = await Team.create(name="Acme", recording_retention_days=30)
    await PhoneNumber.create(team=team, number=NUMBER)
    await VoiceAgent.create(team=team, agent_id=AGENT)
    return team


async def twilio_status(app, call_sid: str = SID, status: str = "completed") -> None:
    """The call row, as Twilio's status callback (signed by the real library) makes it."""
    form = {
        "AccountSid": ACCOUNT,
        "CallSid": call_sid,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Direction": "inbound",
        "From": CALLER,
        "To": NUMBER,
        "SequenceNumber": "3",
        "CallDuration": "62",
    }
    url = "https://gateway.test/api/webhooks/twilio/status"
    response = await app.test_client().post(
        "/api/webhooks/twilio/status",
        data=urlencode(form).encode(),
        headers={
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, await response.get_data(as_text=True)


def now(clock) -> int:
    return int(clock.now().timestamp())


async def post_transcription(app, clock, data: dict[str, Any]) -> Any:
    body, head = delivery("post_call_transcription", data, now(clock))
    return await app.test_client().post(PATH, data=body, headers=head)


async def send_transcription(app, clock, **kw: Any) -> None:
    data = conversation(CONV, start=now(clock) - 120, call_sid=SID, **kw)
    response = await post_transcription(app, clock, data)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert await response.get_json() == {"received": 1}


async def send_audio(app, clock) -> AudioDelivery:
    audio = AudioDelivery(CONV, audio_bytes=30_000, t=now(clock))
    response = await send_chunked(app.test_client(), audio)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return audio


async def types() -> list[str]:
    return list(await WebhookEvent.all().order_by("id").values_list("type", flat=True))


async def assert_joined(team: Team, audio: AudioDelivery) -> None:
    call = await Call.get(external_id=SID)
    (row,) = await CallAnalysis.all()
    rec = await Recording.get(external_id=f"{CONV}:audio")
    assert row.conversation_id == CONV and row.call_sid == SID
    assert row.call_id == call.id and row.team_id == team.id
    assert row.audio_id == rec.id and rec.sha256 == audio.audio_digest()
    assert rec.call_id == call.id and rec.call_external_id == SID and rec.team_id == team.id
    assert call.conversation_id == CONV
    assert (await analysis_for_call(call)).id == row.id


async def test_transcription_then_audio_joined_to_the_twilio_call(make_app, db_kind, clock):
    app, _ = await start(make_app, db_kind)
    team = await seed_team()
    await twilio_status(app)
    await send_transcription(app, clock)
    audio = await send_audio(app, clock)
    await assert_joined(team, audio)
    assert (await types())[1:] == [
        "elevenlabs.post_call_transcription",
        "voice.call.analyzed",
        "elevenlabs.post_call_audio",
        "voice.call.audio_stored",
    ]
    stored = await WebhookEvent.get(type="voice.call.audio_stored")
    assert stored.payload["call_sid"] == SID and stored.team_id == team.id


async def test_audio_then_transcription_joined_to_the_twilio_call(make_app, db_kind, clock):
    app, crm = await start(make_app, db_kind)
    team = await seed_team()
    await twilio_status(app)
    audio = await send_audio(app, clock)
    # The audio knows only its conversation: not yet the call.
    assert (await Recording.get(external_id=f"{CONV}:audio")).call_id is None
    await send_transcription(app, clock)
    await assert_joined(team, audio)
    await run_pending_jobs(app)
    [event] = crm.analyzed
    assert event.call_sid == SID and event.call_id == (await Call.get(external_id=SID)).id


async def test_the_mapping_into_the_neutral_analysis(make_app, clock):
    app, crm = await start(make_app)
    team = await seed_team()
    await send_transcription(app, clock)
    row = await analysis_by_conversation(CONV)
    start_unix = now(clock) - 120
    assert row.provider == "elevenlabs" and row.agent_id == AGENT and row.status == "done"
    assert (row.direction, row.from_number, row.to_number) == ("inbound", CALLER, NUMBER)
    assert [(t.role, t.message, t.offset_seconds) for t in turns(row)] == [
        ("agent", "Hi, this is Ava from Acme.", 0),
        ("user", "I'd like a demo next Tuesday.", 4),
        ("agent", None, 9),
    ]
    assert row.summary == "The caller booked a demo for Tuesday." and row.outcome == "success"
    assert row.evaluation["booked"]["result"] == "success"
    assert row.data_collection["day"]["value"] == "Tuesday"
    assert (row.duration_seconds, row.cost, row.language) == (62, 415, "en")
    assert row.started_at == datetime.fromtimestamp(start_unix, UTC)
    assert row.dynamic_variables == {"customer_name": "Jo Smith"}
    assert row.team_id == team.id and row.analyzed_at == clock.now()

    await run_pending_jobs(app)
    [event] = crm.analyzed
    assert event.analysis_id == row.id and event.team_id == team.id
    assert event.outcome == "success" and event.transcript_turns == 3
    assert event.data_collection["day"].value == "Tuesday"
    assert event.evaluation["booked"].rationale == "Booked."


async def test_missing_new_and_odd_fields_are_read_leniently(make_app, clock):
    app, _ = await start(make_app)
    data = {
        "agent_id": AGENT,
        "conversation_id": "conv_lenient",
        "status": "done",
        "brand_new_field": {"anything": [1, 2]},
        "transcript": [{"role": "user", "message": "hi", "time_in_call_secs": "soon"}, "junk"],
        "metadata": {"call_duration_secs": "62", "cost": True, "phone_call": None},
        "analysis": {"call_successful": "partially", "evaluation_criteria_results": []},
    }
    response = await post_transcription(app, clock, data)
    assert response.status_code == 200
    row = await analysis_by_conversation("conv_lenient")
    assert [(t.role, t.message, t.offset_seconds) for t in turns(row)] == [("user", "hi", None)]
    assert row.outcome == "unknown"  # a value outside the enum reads "unknown"
    assert row.duration_seconds is None and row.cost is None and row.call_sid is None
    assert row.evaluation == {}


async def test_a_transcription_without_conversation_is_400_and_never_retried(make_app, clock):
    app, _ = await start(make_app)
    for data in ({"agent_id": AGENT}, {"conversation_id": ""}, None, {"conversation_id": 7}):
        body, head = delivery("post_call_transcription", data, now(clock))
        response = await app.test_client().post(PATH, data=body, headers=head)
        assert response.status_code == 400, data
        assert (await response.get_json())["code"] == "VALIDATION_ERROR"
    assert await WebhookEvent.all().count() == 0 and await CallAnalysis.all().count() == 0


async def test_the_same_conversation_twice_is_one_analysis_one_event_one_job_each(
    make_app, db_kind, clock
):
    app, crm = await start(make_app, db_kind)
    await seed_team()
    for _ in range(2):
        await send_transcription(app, clock)
    assert await CallAnalysis.all().count() == 1
    assert await types() == ["elevenlabs.post_call_transcription", "voice.call.analyzed"]
    analyzed = await WebhookEvent.get(type="voice.call.analyzed")
    jobs = await Job.filter(event_id=analyzed.id).values_list("handler", flat=True)
    assert jobs == ["crm.log_call"]
    await run_pending_jobs(app)
    assert len(crm.analyzed) == 1


async def test_an_initiation_failure_with_an_unknown_reason(make_app, db_kind, clock):
    app, crm = await start(make_app, db_kind)
    team = await seed_team()
    failed_sid = "CA" + "feedface" * 4
    data = {
        "agent_id": AGENT,
        "conversation_id": "conv_failed",
        "failure_reason": "carrier-exploded",
        "metadata": {
            "type": "twilio",
            "body": {
                "CallSid": failed_sid,
                "CallStatus": "failed",
                "Direction": "outbound-api",
                "From": NUMBER,
                "To": "+14155550123",
            },
        },
        "conversation_initiation_client_data": {"dynamic_variables": {"customer_name": "Lee"}},
    }
    for _ in range(2):
        body, head = delivery("call_initiation_failure", data, now(clock))
        response = await app.test_client().post(PATH, data=body, headers=head)
        assert response.status_code == 200
    (row,) = await CallAnalysis.all()
    assert row.failure_reason == "carrier-exploded" and row.call_sid == failed_sid
    assert (row.direction, row.from_number, row.to_number) == (
        "outbound",
        NUMBER,
        "+14155550123",
    )
    assert row.failed_at == clock.now() and row.dynamic_variables == {"customer_name": "Lee"}
    assert await types() == ["elevenlabs.call_initiation_failure", "voice.call.initiation_failed"]
    await run_pending_jobs(app)
    [event] = crm.failed
    assert event.failure_reason == "carrier-exploded" and event.team_id == team.id
    assert event.call_sid == failed_sid and event.analysis_id == row.id


async def test_unknown_agent_is_analysed_and_stored_unrouted(make_app, clock):
    app, _ = await start(make_app)
    await seed_team()
    data = conversation("conv_stranger", start=now(clock), agent_id="agent_unknown")
    response = await post_transcription(app, clock, data)
    assert response.status_code == 200
    events = await WebhookEvent.all().order_by("id")
    assert [(e.type, e.status, e.team_id) for e in events] == [
        ("elevenlabs.post_call_transcription", UNROUTED, None),
        ("voice.call.analyzed", UNROUTED, None),
    ]
    row = await analysis_by_conversation("conv_stranger")
    assert row.team_id is None and row.agent_id == "agent_unknown"


async def test_unknown_agent_on_a_known_call_takes_the_calls_team(make_app, clock):
    """The webhook is signed with our secret; the call it names is ours: the analysis
    and its event belong to the call's team even if the agent was never registered."""
    app, _ = await start(make_app)
    team = await seed_team()
    await twilio_status(app)
    data = conversation(CONV, start=now(clock), agent_id="agent_unknown", call_sid=SID)
    assert (await post_transcription(app, clock, data)).status_code == 200
    delivery_event = await WebhookEvent.get(type="elevenlabs.post_call_transcription")
    analyzed = await WebhookEvent.get(type="voice.call.analyzed")
    assert delivery_event.status == UNROUTED
    assert analyzed.status == ROUTED and analyzed.team_id == team.id
