"""The Twilio Voice webhooks as Twilio calls them: form POSTs signed by the real
``twilio`` library against the configured public URL."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta

import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.calls.models import Call, Recording
from gateway.identity.models import PhoneNumber, Team, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.storage import recording_storage
from gateway.testing import serve
from gateway.webhooks.models import WebhookEvent
from tests.support.fake_twilio import (
    FakeTwilioMedia,
    OtherHost,
    form_body,
    sid,
    signed,
    wav_bytes,
)

ACCOUNT = "AC" + "11" * 16
TOKEN = "current-auth-token-0001"
OLD_TOKEN = "previous-auth-token-0002"
SUB = "AC" + "22" * 16
SUB_TOKEN = "subaccount-auth-token-0003"
NUMBER = "+15005550006"
OTHER_NUMBER = "+15005550007"
BASE = "https://gateway.test/api/webhooks/twilio/"
ROUTES = ("voice", "status", "recording")


def settings(**extra):
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "previous_auth_token": OLD_TOKEN,
        "stream_url": "wss://agent.test/stream",
        "subaccounts": {},
        **extra,
    }


@pytest.fixture
async def app(make_app):
    return await make_app(plugins={"twilio_voice": settings()})


async def seed_team(name="Acme", number=NUMBER, agent="agent_acme") -> Team:
    team = await Team.create(name=name)
    await PhoneNumber.create(team=team, number=number)
    if agent:
        await VoiceAgent.create(team=team, agent_id=agent)
    return team


def call_form(call_sid: str | None = None, to: str = NUMBER, **extra) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid or sid("CA"),
        "CallStatus": "ringing",
        "Called": to,
        "Caller": "+14155550100",
        "Direction": "inbound",
        "From": "+14155550100",
        "To": to,
        **extra,
    }


def status_form(call_sid: str, status: str, seq: int | None, **extra) -> dict[str, str]:
    form = call_form(call_sid, CallStatus=status, CallbackSource="call-progress-events", **extra)
    if seq is not None:
        form["SequenceNumber"] = str(seq)
    return form


def recording_form(call_sid: str, rec_sid: str, url: str, status="completed", **extra):
    return {
        "AccountSid": ACCOUNT,
        "CallSid": call_sid,
        "RecordingSid": rec_sid,
        "RecordingUrl": url,
        "RecordingStatus": status,
        "RecordingDuration": "12",
        "RecordingChannels": "1",
        "RecordingSource": "StartCallRecordingAPI",
        **extra,
    }


async def post(client, route, form, *, token=TOKEN, signed_url=None, headers=None, body=None):
    """POST ``form`` as Twilio would, signed over ``signed_url`` (default: the public URL)."""
    all_headers = signed(token, signed_url or BASE + route, form)
    all_headers.update(headers or {})
    return await client.post(
        f"/api/webhooks/twilio/{route}",
        data=body if body is not None else form_body(form),
        headers=all_headers,
    )


async def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    body = await response.get_json()
    assert body["code"] == "UNAUTHORIZED" and set(body) >= {"error", "code"}


# -- signatures ------------------------------------------------------------------------


def _forms(route: str) -> dict[str, str]:
    call_sid = sid("CA")
    if route == "recording":
        return recording_form(call_sid, sid("RE"), "https://api.twilio.com/x")
    if route == "status":
        return status_form(call_sid, "completed", 3, CallDuration="5")
    return call_form(call_sid)


@pytest.mark.parametrize("route", ROUTES)
async def test_valid_signature_is_accepted(client, route):
    response = await post(client, route, _forms(route))
    assert response.status_code == 200


ATTACKS = (
    "wrong_signature",
    "missing_header",
    "wrong_url",
    "http_url",
    "tampered",
    "added",
    "removed",
    "unknown_token",
    "other_account",
)


async def _attack(client, route: str, attack: str):
    form = _forms(route)
    kwargs: dict = {}
    body = None
    if attack == "wrong_signature":
        kwargs["headers"] = {"X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    elif attack == "missing_header":
        return await client.post(
            f"/api/webhooks/twilio/{route}",
            data=form_body(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    elif attack == "wrong_url":
        kwargs["signed_url"] = f"https://evil.test/api/webhooks/twilio/{route}"
    elif attack == "http_url":
        kwargs["signed_url"] = f"http://gateway.test/api/webhooks/twilio/{route}"
    elif attack == "tampered":
        body = form_body({**form, "CallSid": sid("CA")})
    elif attack == "added":
        body = form_body({**form, "Extra": "1"})
    elif attack == "removed":
        body = form_body({k: v for k, v in form.items() if k != "CallSid"})
    elif attack == "unknown_token":
        kwargs["token"] = "not-the-token-at-all"
    elif attack == "other_account":
        form = {**form, "AccountSid": "AC" + "99" * 16}
    return await post(client, route, form, body=body, **kwargs)


@pytest.mark.parametrize("route", ROUTES)
async def test_bad_signatures_are_401_and_store_nothing(client, route):
    """Wrong signature, missing header, wrong URL (host, scheme), a tampered, added or
    removed parameter, another token, another account: each a 401 with the standard body."""
    await seed_team()
    for attack in ATTACKS:
        response = await _attack(client, route, attack)
        assert response.status_code == 401, attack
        assert await response.get_json() == {"error": "Invalid signature", "code": "UNAUTHORIZED"}
    assert await WebhookEvent.all().count() == 0
    assert await Call.all().count() == 0


async def test_public_url_comes_from_config_not_the_host_header(client):
    form = status_form(sid("CA"), "completed", 3)
    # Signed for the configured public URL, delivered with another Host: accepted.
    response = await post(client, "status", form, headers={"Host": "internal:8080"})
    assert response.status_code == 200
    # Signed for what the Host header says: refused.
    response = await post(
        client,
        "status",
        status_form(sid("CA"), "completed", 3),
        signed_url="http://internal:8080/api/webhooks/twilio/status",
        headers={"Host": "internal:8080"},
    )
    await assert_unauthorized(response)


async def test_signature_with_the_default_port_is_accepted(client):
    form = status_form(sid("CA"), "ringing", 1)
    url = "https://gateway.test:443/api/webhooks/twilio/status"
    assert (await post(client, "status", form, signed_url=url)).status_code == 200


async def test_rotation_accepts_the_previous_token(client):
    form = status_form(sid("CA"), "ringing", 1)
    assert (await post(client, "status", form, token=OLD_TOKEN)).status_code == 200


async def test_subaccount_token_is_bound_to_its_team(make_app):
    sub = {SUB: {"auth_token": SUB_TOKEN, "team_id": 1}}
    app = await make_app(plugins={"twilio_voice": settings(subaccounts=sub)})
    client = app.test_client()
    mine = await seed_team("Mine", NUMBER, "agent_mine")
    other = await seed_team("Other", OTHER_NUMBER, "agent_other")
    assert (mine.id, other.id) == (1, 2)
    ok = status_form(sid("CA"), "ringing", 1, AccountSid=SUB)
    assert (await post(client, "status", ok, token=SUB_TOKEN)).status_code == 200
    # The main account's token does not sign for the subaccount, nor the reverse.
    await assert_unauthorized(await post(client, "status", {**ok, "SequenceNumber": "2"}))
    await assert_unauthorized(
        await post(client, "status", status_form(sid("CA"), "ringing", 1), token=SUB_TOKEN)
    )
    # A valid subaccount signature for another team's number is refused.
    theirs = status_form(sid("CA"), "ringing", 1, AccountSid=SUB, To=OTHER_NUMBER)
    await assert_unauthorized(await post(client, "status", theirs, token=SUB_TOKEN))
    assert await Call.filter(team_id=other.id).count() == 0


async def test_without_a_token_every_route_is_401_and_startup_warns(make_app):
    app = await make_app(plugins={"twilio_voice": {"stream_url": "wss://agent.test/s"}})
    client = app.test_client()
    for route in ROUTES:
        await assert_unauthorized(await post(client, route, _forms(route)))
    warnings = app.extensions["gateway"].warnings
    assert any("twilio_voice" in w and "auth_token" in w for w in warnings)
    assert all(TOKEN not in w for w in warnings)


async def test_malformed_form_is_400_after_the_signature(client):
    form = call_form()
    del form["CallSid"]
    response = await post(client, "voice", form)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "VALIDATION_ERROR"


# -- incoming calls ----------------------------------------------------------------------


async def test_known_number_is_connected_to_the_team_agent(client):
    team = await seed_team()
    form = call_form()
    response = await post(client, "voice", form)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    xml = (await response.get_data()).decode()
    assert '<Connect><Stream url="wss://agent.test/stream">' in xml
    assert '<Parameter name="agent_id" value="agent_acme" />' in xml
    assert f'<Parameter name="call_sid" value="{form["CallSid"]}" />' in xml
    call = await Call.get(external_id=form["CallSid"])
    assert (call.team_id, call.status, call.agent_id, call.direction) == (
        team.id,
        "ringing",
        "agent_acme",
        "inbound",
    )


async def test_unknown_number_hears_a_polite_goodbye(client):
    response = await post(client, "voice", call_form(to="+19999999999"))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    xml = (await response.get_data()).decode()
    assert "<Say" in xml and "<Hangup />" in xml and "<Connect>" not in xml


async def test_team_without_agent_hears_the_unavailable_message(client):
    await seed_team(agent=None)
    xml = (await (await post(client, "voice", call_form())).get_data()).decode()
    assert "cannot take your call" in xml and "<Hangup />" in xml


async def test_a_retried_voice_request_is_answered_again_but_stored_once(client):
    await seed_team()
    form = call_form()
    first = await post(client, "voice", form)
    again = await post(client, "voice", form)
    assert (await first.get_data()) == (await again.get_data())
    assert await Call.filter(external_id=form["CallSid"]).count() == 1


# -- status callbacks ------------------------------------------------------------------


async def test_out_of_order_and_duplicated_status_callbacks(make_app, db_kind):
    client = (await make_app(db=db_kind, plugins={"twilio_voice": settings()})).test_client()
    team = await seed_team()
    call_sid = sid("CA")
    at = "Sun, 29 Nov 2026 02:{} +0000"
    sequence = [
        status_form(call_sid, "completed", 3, CallDuration="47", Timestamp=at.format("01:00")),
        status_form(call_sid, "ringing", 1, Timestamp=at.format("00:05")),
        status_form(call_sid, "in-progress", 2, Timestamp=at.format("00:13")),
        status_form(call_sid, "initiated", 0, Timestamp=at.format("00:00")),
    ]
    for form in [*sequence, sequence[0], sequence[1]]:  # the last two are retries
        assert (await post(client, "status", form)).status_code == 200
    call = await Call.get(external_id=call_sid)
    assert (call.status, call.last_sequence, call.duration_seconds, call.team_id) == (
        "completed",
        3,
        47,
        team.id,
    )
    assert call.started_at.isoformat() == "2026-11-29T02:00:00+00:00"
    assert call.answered_at.isoformat() == "2026-11-29T02:00:13+00:00"
    assert call.ended_at.isoformat() == "2026-11-29T02:01:00+00:00"


# -- register-call mode ----------------------------------------------------------------

AGENT_KEY = "xi-test-api-key-0004"
AGENT_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://api.test/x"/></Connect></Response>'


class FakeAgentApi:
    """The agent provider's register-call endpoint on loopback: checks the API key and
    answers TwiML, or fails, or hangs, as a test tells it to."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[dict] = []
        self.release = asyncio.Event()

    async def register_call(self, request: web.Request) -> web.Response:
        if request.headers.get("xi-api-key") != AGENT_KEY:
            return web.json_response({"detail": "invalid api key"}, status=401)
        self.calls.append(await request.json())
        if self.mode == "slow":
            await self.release.wait()
        if self.mode == "error":
            return web.json_response({"detail": "boom"}, status=500)
        return web.Response(text=AGENT_TWIML, content_type="application/xml")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/convai/twilio/register-call", self.register_call)
        self.runner, port = await serve(app, handle_signals=False)
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()


@pytest.fixture
async def agent_api(make_app):
    fake = FakeAgentApi()
    base = await fake.start()
    cfg = settings(
        stream_url=None,
        agent_api_key=AGENT_KEY,
        agent_api_base_url=base,
        agent_api_timeout_seconds=0.3,
    )
    app = await make_app(plugins={"twilio_voice": cfg})
    yield fake, app.test_client()
    await fake.stop()


async def test_register_call_answer_is_passed_through(agent_api):
    fake, client = agent_api
    await seed_team()
    form = call_form()
    response = await post(client, "voice", form)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert (await response.get_data()).decode() == AGENT_TWIML
    assert fake.calls == [
        {
            "agent_id": "agent_acme",
            "from_number": form["From"],
            "to_number": NUMBER,
            "direction": "inbound",
        }
    ]


@pytest.mark.parametrize("mode", ["slow", "error"])
async def test_agent_api_failure_still_answers_twiml_in_time(agent_api, mode):
    fake, client = agent_api
    fake.mode = mode
    await seed_team()
    started = time.monotonic()
    response = await post(client, "voice", call_form())
    assert time.monotonic() - started < 5  # the agent timeout (0.3 s here), not Twilio's 15 s
    xml = (await response.get_data()).decode()
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "cannot take your call" in xml and "<Hangup />" in xml
    assert AGENT_KEY not in xml


async def test_webhooks_shared_key_signature(make_app):
    """Requests matched by a Twilio Webhooks rule are signed with a SharedKey and
    HMAC-SHA256, named in X-Twilio-Webhooks-Signature-Settings."""
    secret = "shared-key-secret-0005"
    app = await make_app(plugins={"twilio_voice": settings(shared_keys={"whk_1": secret})})
    client = app.test_client()
    form = status_form(sid("CA"), "ringing", 1)
    url = BASE + "status"
    sig = RequestValidator(secret).compute_signature(url, form, algorithm="HMAC_SHA256")

    async def send(settings_header: str, signature: str = sig):
        return await client.post(
            "/api/webhooks/twilio/status",
            data=form_body(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "X-Twilio-Webhooks-Signature-Settings": settings_header,
            },
        )

    assert (await send("key=whk_1,algorithm=HMAC_SHA256")).status_code == 200
    await assert_unauthorized(await send("key=whk_2,algorithm=HMAC_SHA256"))
    await assert_unauthorized(await send("key=whk_1,algorithm=HMAC_SHA1"))
    # The auth token cannot stand in for the shared key.
    token_sig = RequestValidator(TOKEN).compute_signature(url, form, algorithm="HMAC_SHA256")
    await assert_unauthorized(await send("key=whk_1,algorithm=HMAC_SHA256", token_sig))


async def test_duplicates_are_acknowledged_and_stored_once(client):
    call_sid = sid("CA")
    forms = [status_form(call_sid, s, q) for s, q in (("ringing", 1), ("completed", 3))]
    for form in [*forms, *forms, forms[0]]:
        assert (await post(client, "status", form)).status_code == 200
    keys = await WebhookEvent.filter(source="twilio_voice.status").values_list(
        "dedup_key", flat=True
    )
    assert sorted(keys) == [f"{call_sid}:completed:3", f"{call_sid}:ringing:1"]


async def test_replayed_callback_with_new_unsigned_headers_is_stored_once(client):
    """``I-Twilio-Idempotency-Token`` is not signed: an attacker replaying one captured
    callback with fresh header values must not create new events."""
    call_sid = sid("CA")
    form = status_form(call_sid, "completed", None, CallDuration="9")
    for n in range(5):
        headers = {"I-Twilio-Idempotency-Token": f"forged-{n}", "X-Home-Region": f"r{n}"}
        assert (await post(client, "status", form, headers=headers)).status_code == 200
    assert await WebhookEvent.filter(source="twilio_voice.status").count() == 1
    # Parameters in another order verify the same: still the same event.
    reordered = dict(reversed(list(form.items())))
    assert (await post(client, "status", reordered)).status_code == 200
    assert await WebhookEvent.filter(source="twilio_voice.status").count() == 1
    call = await Call.get(external_id=call_sid)
    assert (call.status, call.duration_seconds) == ("completed", 9)


async def test_distinct_signed_callbacks_without_sequence_are_kept_apart(client):
    call_sid = sid("CA")
    first = status_form(call_sid, "completed", None, CallDuration="9")
    second = status_form(call_sid, "completed", None, CallDuration="9", Timestamp="later")
    for form in (first, second, first):
        assert (await post(client, "status", form)).status_code == 200
    keys = await WebhookEvent.filter(source="twilio_voice.status").values_list(
        "dedup_key", flat=True
    )
    assert len(keys) == 2 and all(k.startswith(f"{call_sid}:completed:signed:") for k in keys)


# -- recordings end to end -------------------------------------------------------------


@pytest.fixture
async def media():
    fake = await FakeTwilioMedia(ACCOUNT, TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def rec_app(make_app, media):
    cfg = settings(api_base_url=media.base_url, recording_timeout_seconds=0.3)
    return await make_app(plugins={"twilio_voice": cfg})


async def test_recording_callback_downloads_the_file_for_the_team(rec_app, media, clock):
    client = rec_app.test_client()
    team = await seed_team()
    team.recording_retention_days = 7
    await team.save()
    call_sid, rec_sid = sid("CA"), sid("RE")
    audio = wav_bytes(0.5)
    media.recordings[rec_sid] = audio
    await post(client, "voice", call_form(call_sid))
    in_progress = recording_form(call_sid, rec_sid, media.url_for(rec_sid), "in-progress")
    done = recording_form(call_sid, rec_sid, media.url_for(rec_sid))
    for form in (in_progress, done, done):
        assert (await post(client, "recording", form)).status_code == 200
    assert await run_pending_jobs(rec_app) == 2  # one per stored event, the first a no-op
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.team_id, rec.size_bytes, rec.duration_seconds) == (
        "stored",
        team.id,
        len(audio),
        12,
    )
    assert rec.sha256 == hashlib.sha256(audio).hexdigest()
    assert rec.expires_at == clock.now() + timedelta(days=7)
    assert rec.call_id == (await Call.get(external_id=call_sid)).id
    assert await recording_storage(rec_app).read(rec.storage_key) == audio
    assert len(media.hits) == 1


async def test_recording_gone_at_twilio_is_recorded_and_dead_lettered(rec_app, media):
    client = rec_app.test_client()
    rec_sid = sid("RE")
    form = recording_form(sid("CA"), rec_sid, media.url_for(rec_sid))
    assert (await post(client, "recording", form)).status_code == 200
    await run_pending_jobs(rec_app)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error) == ("failed", "not_found")
    job = await Job.get(handler="twilio_voice.download_recording")
    assert (job.status, job.attempts) == ("dead", 1)
    assert await run_pending_jobs(rec_app) == 0  # not retried


async def test_recording_url_elsewhere_is_refused_end_to_end(rec_app, media):
    other = await OtherHost().start()
    try:
        rec_sid = sid("RE")
        form = recording_form(sid("CA"), rec_sid, f"{other.base_url}/2010-04-01/x/{rec_sid}")
        assert (await post(rec_app.test_client(), "recording", form)).status_code == 200
        await run_pending_jobs(rec_app)
        rec = await Recording.get(external_id=rec_sid)
        assert (rec.status, rec.error) == ("refused", "host_not_allowed")
        assert other.hits == [] and media.hits == []
    finally:
        await other.stop()


async def test_slow_media_host_is_retried_later_by_the_queue(rec_app, media, clock):
    rec_sid = sid("RE")
    media.slow.add(rec_sid)
    media.recordings[rec_sid] = wav_bytes()
    form = recording_form(sid("CA"), rec_sid, media.url_for(rec_sid))
    await post(rec_app.test_client(), "recording", form)
    assert await run_pending_jobs(rec_app) == 1
    assert (await Recording.get(external_id=rec_sid)).error == "timeout"
    job = await Job.get(handler="twilio_voice.download_recording")
    assert job.status == "pending" and job.run_at > clock.now()
    # Twilio is fast again and the backoff has passed: the retry stores it.
    media.slow.clear()
    clock.advance(3600)
    assert await run_pending_jobs(rec_app) == 1
    assert (await Recording.get(external_id=rec_sid)).status == "stored"
