"""The calls API from the user's side: a call told by signed Twilio and ElevenLabs
webhooks, then listed, filtered and read as its timeline by a member of its team, its
recording streamed with byte ranges; other teams see nothing of it."""

from __future__ import annotations

import pytest

from gateway import hookimpl
from gateway.identity import service
from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.jobs.worker import run_pending_jobs
from tests.support.call_story import AGENT, AUDIO, CallStory, plugin_settings
from tests.support.fake_elevenlabs import SECRET
from tests.support.fake_twilio import FakeTwilioMedia, sid
from tests.support.identity import make_team, member_headers
from tests.support.processes import until

ACCOUNT_TOKEN = ("AC" + "5a" * 16, "console-twilio-auth-token")


@pytest.fixture
async def media():
    fake = await FakeTwilioMedia(*ACCOUNT_TOKEN).start()
    yield fake
    await fake.stop()


async def send(client, delivery) -> None:
    resp = await client.post(delivery.path, data=delivery.body, headers=delivery.headers)
    assert resp.status_code == 200, (delivery.path, await resp.get_data(as_text=True))


async def told_call(
    make_app, media, clock, db: str = "sqlite", gateway: dict | None = None, **more_plugins
):
    """The app, the story and the two teams' members' headers, after the whole call."""
    plugins = {**plugin_settings(media.base_url, SECRET), **more_plugins}
    app = await make_app(db=db, plugins=plugins, **(gateway or {}))
    team = await make_team("Acme")
    await PhoneNumber.create(team=team, number="+14155550100")
    await VoiceAgent.create(team=team, agent_id=AGENT)
    other = await make_team("Globex")
    member = await member_headers(team, "member@acme.test", "member")
    stranger = await member_headers(other, "member@globex.test", "admin")
    now = int(clock.now().timestamp())
    rec_sid = sid("RE")
    media.recordings[rec_sid] = AUDIO
    story = CallStory(
        call_sid=sid("CA"),
        recording_sid=rec_sid,
        conversation_id="conv_console_0001",
        public_url="https://gateway.test",
        media_url=media.url_for(rec_sid),
        start=now - 90,
    )
    client = app.test_client()
    for delivery in story.telephony():
        await send(client, delivery)
    await send(client, story.transcription(now))
    await run_pending_jobs(app)
    return app, story, team, member, stranger


async def test_a_member_reads_the_whole_timeline_of_a_call(make_app, media, clock, db_kind):
    app, story, team, member, _ = await told_call(make_app, media, clock, db_kind)
    client = app.test_client()
    resp = await client.get("/api/calls", headers=member)
    body = await resp.get_json()
    assert resp.status_code == 200, body
    [listed] = body["items"]
    assert body["next_cursor"] is None
    assert (listed["external_id"], listed["status"], listed["outcome"]) == (
        story.call_sid,
        "completed",
        "success",
    )
    assert listed["team_id"] == team.id and listed["from_number"] == story.caller

    resp = await client.get(f"/api/calls/{listed['id']}", headers=member)
    timeline = await resp.get_json()
    assert resp.status_code == 200, timeline
    statuses = [e["status"] for e in timeline["events"] if e["type"] == "voice.call.status"]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    types = {e["type"] for e in timeline["events"]}
    assert {"voice.recording.status", "voice.call.analyzed"} <= types
    analysis = timeline["analysis"]
    assert analysis["summary"] == "The caller booked a demo for Tuesday."
    assert analysis["outcome"] == "success"
    assert [t["role"] for t in analysis["transcript"]][:2] == ["agent", "user"]
    assert analysis["data_collection"]["day"]["value"] == "Tuesday"
    assert analysis["dynamic_variables"]["customer_name"] == "Jo Smith"
    handlers = {j["handler"]: j for j in timeline["jobs"]}
    download = handlers["twilio_voice.download_recording"]
    assert (download["status"], download["attempts"]) == ("succeeded", 1)
    assert timeline["effects"] == []
    [recording] = timeline["recordings"]
    assert recording["status"] == "stored" and recording["size_bytes"] == len(AUDIO)

    # The recording: whole, then a part (an audio element seeking), then past its end.
    url = recording["url"]
    resp = await client.get(url, headers=member)
    assert resp.status_code == 200
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert await resp.get_data() == AUDIO
    resp = await client.get(url, headers={**member, "Range": "bytes=100-199"})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    assert await resp.get_data() == AUDIO[100:200]
    resp = await client.get(url, headers={**member, "Range": "bytes=-10"})
    assert (resp.status_code, await resp.get_data()) == (206, AUDIO[-10:])
    resp = await client.get(url, headers={**member, "Range": f"bytes={len(AUDIO)}-"})
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(AUDIO)}"


async def test_another_team_sees_nothing_of_the_call(make_app, media, clock):
    app, _story, team, member, stranger = await told_call(make_app, media, clock)
    client = app.test_client()
    call_id = (await (await client.get("/api/calls", headers=member)).get_json())["items"][0]["id"]
    timeline = await (await client.get(f"/api/calls/{call_id}", headers=member)).get_json()
    url = timeline["recordings"][0]["url"]
    for path in (f"/api/calls/{call_id}", url, f"/api/calls/{call_id + 999}"):
        resp = await client.get(path, headers=stranger)
        assert resp.status_code == 404, path
        assert (await resp.get_json())["code"] == "NOT_FOUND"
    resp = await client.get("/api/calls", headers=stranger)
    assert (await resp.get_json())["items"] == []
    resp = await client.get(f"/api/calls?team_id={team.id}", headers=stranger)
    assert resp.status_code == 403
    assert (await client.get("/api/calls")).status_code == 401
    assert (await client.get(url)).status_code == 401


async def test_filters_and_pages(make_app, media, clock):
    app, story, _team, member, _ = await told_call(make_app, media, clock)
    client = app.test_client()

    async def ids(query: str) -> list[str]:
        resp = await client.get(f"/api/calls?{query}", headers=member)
        body = await resp.get_json()
        assert resp.status_code == 200, (query, body)
        return [c["external_id"] for c in body["items"]]

    day = clock.now().date().isoformat()
    found = [story.call_sid]
    assert await ids("outcome=success") == found
    assert await ids("outcome=failure") == []
    assert await ids("status=completed") == found
    assert await ids("status=ringing") == []
    assert await ids("number=5550199") == found
    assert await ids("number=%2B1 (415) 555-0199") == found
    assert await ids("number=999999") == []
    assert await ids(f"agent={AGENT}") == found
    assert await ids("agent=agent_other") == []
    assert await ids(f"from={day}&to={day}") == found
    assert await ids("to=2001-01-01") == []
    assert await ids("from=2999-01-01T00:00:00Z") == []

    # A second team member's call list pages newest first.
    team = await service.create_team("Initech", None)
    headers = await member_headers(team, "owner@initech.test", "owner")
    from gateway.calls.models import Call

    for n in range(3):
        await Call.create(external_id=f"CAx{n}", status="completed", team_id=team.id)
    resp = await client.get("/api/calls?limit=2", headers=headers)
    first = await resp.get_json()
    assert [c["external_id"] for c in first["items"]] == ["CAx2", "CAx1"]
    resp = await client.get(f"/api/calls?limit=2&cursor={first['next_cursor']}", headers=headers)
    second = await resp.get_json()
    assert [c["external_id"] for c in second["items"]] == ["CAx0"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("outcome=maybe", "outcome"),
        ("from=yesterday", "from"),
        ("to=2026-13-45", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("number=call-me", "number"),
        ("cursor=abc", "cursor"),
        ("limit=-1", "limit"),
        ("agent=" + "a" * 300, "agent"),
    ],
)
async def test_bad_filters_are_400(app, query, field):
    team = await make_team("Acme")
    headers = await member_headers(team, "m@acme.test", "member")
    resp = await app.test_client().get(f"/api/calls?{query}", headers=headers)
    body = await resp.get_json()
    assert resp.status_code == 400, body
    assert (body["code"], body["field"]) == ("VALIDATION_ERROR", field)


class Crm:
    """A CRM plugin whose lookup knows the caller."""

    @hookimpl
    async def lookup_contact(self, team, phone):
        return {"name": "Jo Smith"} if phone == "+14155550199" else None


async def test_the_timeline_says_what_the_agent_was_told_and_who_answered(make_app, media, clock):
    psecret = "psec-calls-api-0123456789"
    plugins = plugin_settings(media.base_url, SECRET)
    plugins["elevenlabs"]["personalize_secret"] = psecret
    app = await make_app(plugins={**plugins, "crm": {}}, extra_plugins=[("crm", Crm())])
    team = await make_team("Acme")
    await PhoneNumber.create(team=team, number="+14155550100")
    await VoiceAgent.create(team=team, agent_id=AGENT)
    member = await member_headers(team, "member@acme.test", "member")
    owner = await member_headers(team, "owner@acme.test", "owner")
    client = app.test_client()
    variables = {
        "dynamic_variables": {"customer_name": "there"},
        "contact_variables": {"customer_name": "name"},
    }
    resp = await client.put(
        f"/api/teams/{team.id}/settings/elevenlabs", json=variables, headers=owner
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    story = CallStory(
        call_sid=sid("CA"),
        recording_sid=sid("RE"),
        conversation_id="conv_personalized",
        public_url="https://gateway.test",
        media_url=media.url_for("RE0"),
        start=int(clock.now().timestamp()),
    )
    client = app.test_client()
    asked = {
        "caller_id": story.caller,
        "agent_id": AGENT,
        "called_number": story.number,
        "call_sid": story.call_sid,
    }
    resp = await client.post(
        "/api/webhooks/elevenlabs/personalize", json=asked, headers={"X-Webhook-Secret": psecret}
    )
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    await send(client, story.status("ringing", 1, 2))
    body = await (await client.get("/api/calls", headers=member)).get_json()
    path = f"/api/calls/{body['items'][0]['id']}"
    timeline: dict = {}

    async def kept() -> bool:  # the plugin writes it off the answer's path, within 50 ms
        nonlocal timeline
        timeline = await (await client.get(path, headers=member)).get_json()
        return timeline["personalization"] is not None

    await until(kept, "the personalization to be kept", 10)
    told = timeline["personalization"]
    assert told["answered_by"] == "crm"
    assert told["contact"] == {"name": "Jo Smith"}
    assert told["at"] is not None
    assert told["dynamic_variables"]["customer_name"] == "Jo Smith"
    assert timeline["analysis"]["outcome"] is None  # asked, not analyzed yet


async def test_a_recording_in_the_s3_bucket_streams_with_ranges(
    make_app, media, clock, moto_server
):
    app, _story, _team, member, _ = await told_call(
        make_app,
        media,
        clock,
        gateway={"recording_storage": "s3", "s3": moto_server.settings(part_size_mib=5)},
    )
    client = app.test_client()
    call_id = (await (await client.get("/api/calls", headers=member)).get_json())["items"][0]["id"]
    timeline = await (await client.get(f"/api/calls/{call_id}", headers=member)).get_json()
    url = timeline["recordings"][0]["url"]
    resp = await client.get(url, headers={**member, "Range": "bytes=44-1043"})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes 44-1043/{len(AUDIO)}"
    assert await resp.get_data() == AUDIO[44:1044]
    resp = await client.head(url, headers=member)  # (the test client recounts the length)
    assert (resp.status_code, resp.headers["Accept-Ranges"]) == (200, "bytes")
    assert await resp.get_data() == b""


async def test_an_analysis_before_the_calls_first_callback_is_found_by_its_filters(
    make_app, media, clock
):
    app = await make_app(plugins=plugin_settings(media.base_url, SECRET))
    team = await make_team("Acme")
    await PhoneNumber.create(team=team, number="+14155550100")
    await VoiceAgent.create(team=team, agent_id=AGENT)
    member = await member_headers(team, "member@acme.test", "member")
    now = int(clock.now().timestamp())
    story = CallStory(
        call_sid=sid("CA"),
        recording_sid=sid("RE"),
        conversation_id="conv_early",
        public_url="https://gateway.test",
        media_url=media.url_for("RE0"),
        start=now - 90,
    )
    client = app.test_client()
    await send(client, story.transcription(now))  # ElevenLabs first,
    await send(client, story.status("completed", 3, 65))  # then Twilio's callback
    for query in ("outcome=success", f"agent={AGENT}&outcome=success"):
        resp = await client.get(f"/api/calls?{query}", headers=member)
        body = await resp.get_json()
        assert [c["external_id"] for c in body["items"]] == [story.call_sid], query
        assert body["items"][0]["outcome"] == "success"
    resp = await client.get("/api/calls?outcome=failure", headers=member)
    assert (await resp.get_json())["items"] == []
