"""``POST /api/webhooks/elevenlabs`` as ElevenLabs calls it: the signature scheme
(cross-checked against the official SDK's ``construct_event``), routing by agent,
idempotency on (conversation id, type), and the small event types."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from elevenlabs import BadRequestError
from elevenlabs.webhooks_custom import WebhooksClient

from gateway.identity.models import Team, VoiceAgent
from gateway.webhooks.ingest import stats
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from tests.support.fake_elevenlabs import (
    AGENT,
    OLD_SECRET,
    PATH,
    SECRET,
    envelope,
    headers,
    signature,
    transcription,
)


def settings(**extra):
    return {"webhook_secret": SECRET, "previous_webhook_secret": OLD_SECRET, **extra}


@pytest.fixture
async def app(make_app):
    return await make_app(plugins={"elevenlabs": settings()})


def now(clock) -> int:
    return int(clock.now().timestamp())


async def seed_team(agent: str = AGENT, retention: int = 90) -> Team:
    team = await Team.create(name="Acme", recording_retention_days=retention)
    await VoiceAgent.create(team=team, agent_id=agent)
    return team


async def post(app, body: bytes, head: dict[str, str]):
    return await app.test_client().post(PATH, data=body, headers=head)


# -- the signature, against the SDK -------------------------------------------------


def sdk_accepts(body: bytes, header: str | None, secret: str = SECRET) -> bool:
    """The official SDK's verdict. ``rawBody`` must be a str: the SDK formats it into
    the signed string, so bytes would sign ``b'...'``."""
    sdk = WebhooksClient(client_wrapper=None)  # construct_event makes no request
    try:
        sdk.construct_event(rawBody=body.decode(), sig_header=header, secret=secret)
    except (BadRequestError, ValueError):  # ValueError: int() of a bad timestamp
        return False
    return True


def _cases(t: int, body: bytes) -> dict[str, tuple[bytes, str | None, bool]]:
    """name -> (body sent, header, what the gateway answers: accepted?)."""
    good = signature(body, t)
    digest = good.split("v0=")[1]
    return {
        "valid": (body, good, True),
        "previous secret": (body, signature(body, t, OLD_SECRET), True),
        "tampered body": (body.replace(b"done", b"fail"), good, False),
        "wrong secret": (body, signature(body, t, "not-the-secret"), False),
        "stale by 31 minutes": (body, signature(body, t - 31 * 60), False),
        "missing header": (body, None, False),
        "no v0": (body, f"t={t}", False),
        "v1 only": (body, f"t={t},v1={digest}", False),
        "timestamp not a number": (body, f"t=soon,v0={digest}", False),
        # Documented differences (docs/plugins/elevenlabs.md): the SDK rejects the
        # next two and accepts the last one.
        "spaces after commas": (body, f"t={t}, v0={digest}", True),
        "two v0, first matches": (body, f"t={t},v0={digest},v0={'0' * 64}", True),
        "6 minutes ahead": (body, signature(body, t + 6 * 60), False),
    }


SDK_DIFFERS = {"spaces after commas", "two v0, first matches", "6 minutes ahead"}


@pytest.mark.parametrize("case", list(_cases(0, b"{}")))
async def test_signature_cases_match_the_sdk_except_where_documented(make_app, clock, case):
    t = int(time.time())  # the SDK reads the real clock; ours is set to the same second
    clock.set(datetime.fromtimestamp(t, UTC))
    app = await make_app(plugins={"elevenlabs": settings()})
    body = transcription("conv_sig", t)
    sent, header, accepted = _cases(t, body)[case]
    secret = OLD_SECRET if case == "previous secret" else SECRET
    if case not in SDK_DIFFERS:
        assert sdk_accepts(sent, header, secret) is accepted
    else:
        assert sdk_accepts(sent, header, secret) is not accepted
    head = {"Content-Type": "application/json"}
    if header is not None:
        head["ElevenLabs-Signature"] = header
    response = await post(app, sent, head)
    if accepted:
        assert response.status_code == 200, await response.get_data(as_text=True)
        assert await response.get_json() == {"received": 1}
        types = await WebhookEvent.all().order_by("id").values_list("type", flat=True)
        assert types == ["elevenlabs.post_call_transcription", "voice.call.analyzed"]
    else:
        assert response.status_code == 401
        assert await response.get_json() == {"error": "Invalid signature", "code": "UNAUTHORIZED"}
        assert await WebhookEvent.all().count() == 0
        assert stats(app)["elevenlabs.webhook"]["unauthorized"] == 1


def test_the_documented_header_format_is_what_the_sdk_checks():
    """The test vector computed by hand from the docs' description."""
    body = b'{"type":"post_call_transcription","event_timestamp":1739537297,"data":{}}'
    expected = "t=1739537297,v0=d8a0fc2a9a570a47e6ccaf1aafe3739f64d26a9dfac82f7d1a617fade715152a"
    assert signature(body, 1739537297, "wsec_test") == expected


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-30 * 60, True), (-30 * 60 - 1, False), (5 * 60, True), (5 * 60 + 1, False)],
)
async def test_timestamp_window_on_the_gateway_clock(app, clock, offset, accepted):
    t = now(clock) + offset
    body = transcription("conv_window", t)
    response = await post(app, body, headers(body, t))
    assert response.status_code == (200 if accepted else 401)
    clock.advance(3600)  # the same delivery an hour later is stale whatever it was
    response = await post(app, body, headers(body, t))
    assert response.status_code == 401


async def test_without_a_configured_secret_everything_is_refused(make_app, clock):
    app = await make_app(plugins={"elevenlabs": {}})
    assert any("webhook_secret" in w for w in app.extensions["gateway"].warnings)
    body = transcription("conv_nosecret", now(clock))
    response = await post(app, body, headers(body, now(clock)))
    assert response.status_code == 401
    assert await WebhookEvent.all().count() == 0


async def test_a_secret_never_appears_in_the_logs(app, clock, caplog):
    t = now(clock)
    body = transcription("conv_log", t)
    await post(app, body, headers(body, t, "wrong"))
    await post(app, body, headers(body, t))
    assert SECRET not in caplog.text and OLD_SECRET not in caplog.text


# -- routing, idempotency, types ------------------------------------------------------


async def test_transcription_is_routed_by_agent_and_stored_once(make_app, db_kind, clock):
    app = await make_app(db=db_kind, plugins={"elevenlabs": settings()})
    team = await seed_team()
    t = now(clock)
    body = transcription("conv_once", t)
    for _ in range(2):  # a retried delivery
        response = await post(app, body, headers(body, t))
        assert response.status_code == 200
        assert await response.get_json() == {"received": 1}
    event, analyzed = await WebhookEvent.all().order_by("id")
    assert event.type == "elevenlabs.post_call_transcription"
    assert analyzed.type == "voice.call.analyzed" and analyzed.team_id == team.id
    assert event.dedup_key == "conv_once:post_call_transcription"
    assert event.status == ROUTED and event.team_id == team.id and event.agent_id == AGENT
    assert event.payload["data"]["analysis"]["call_successful"] == "success"
    assert event.occurred_at == datetime.fromtimestamp(t, UTC)
    assert stats(app)["elevenlabs.webhook"]["duplicate"] == 1


async def test_unknown_agent_is_stored_unrouted(app, clock):
    await seed_team()
    t = now(clock)
    body = transcription("conv_stranger", t, agent_id="agent_nobody_knows")
    response = await post(app, body, headers(body, t))
    assert response.status_code == 200
    event, analyzed = await WebhookEvent.all().order_by("id")
    assert event.status == UNROUTED and event.team_id is None
    assert event.agent_id == "agent_nobody_knows"
    assert analyzed.type == "voice.call.analyzed" and analyzed.status == UNROUTED
    assert analyzed.payload["agent_id"] == "agent_nobody_knows"


async def test_unknown_type_is_stored_and_acknowledged(app, clock):
    t = now(clock)
    body = envelope("agent_mood_report", t, conversation_id="conv_new", mood="cheerful")
    response = await post(app, body, headers(body, t))
    assert response.status_code == 200
    (event,) = await WebhookEvent.all()
    assert event.type == "voice.agent.event_received"
    assert event.payload["type"] == "agent_mood_report"
    assert event.payload["data"]["mood"] == "cheerful"


async def test_initiation_failure_without_conversation_id_is_deduplicated_by_content(app, clock):
    t = str(now(clock))  # event_timestamp as a string, as the general webhook docs say
    body = envelope("call_initiation_failure", t, agent_id=AGENT, failure_reason="busy")
    other = envelope("call_initiation_failure", t, agent_id=AGENT, failure_reason="no-answer")
    for sent in (body, body, other):
        response = await post(app, sent, headers(sent, int(t)))
        assert response.status_code == 200
    events = await WebhookEvent.filter(type="elevenlabs.call_initiation_failure").order_by("id")
    assert [e.payload["data"]["failure_reason"] for e in events] == ["busy", "no-answer"]
    failed = await WebhookEvent.filter(type="voice.call.initiation_failed").order_by("id")
    assert [e.payload["failure_reason"] for e in failed] == ["busy", "no-answer"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b'["a list"]', b'{"no": "type"}', b'{"type": "post_call_audio"}'],
)
async def test_signed_but_malformed_is_400_and_nothing_is_stored(app, clock, body):
    t = now(clock)
    response = await post(app, body, headers(body, t))
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "VALIDATION_ERROR"
    assert await WebhookEvent.all().count() == 0


async def test_other_routes_keep_the_small_body_limit(app):
    """The audio route allows 150 MiB; a login still may not send 2 MB."""
    response = await app.test_client().post("/api/auth/login", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
