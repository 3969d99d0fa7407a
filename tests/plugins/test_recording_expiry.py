"""Recording expiry on the provider's side: ``cleanup-recordings`` emits
``voice.recording.expired`` per recording it deleted, and the Twilio plugin (opted in)
deletes Twilio's copy through a real HTTP server that speaks Twilio's REST API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.calls.models import Recording
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.storage import recording_storage
from gateway.webhooks.models import WebhookEvent
from tests.support.cron_plugin import SECRET, bearer
from tests.support.fake_twilio import FakeTwilioMedia, sid, wav_bytes

ACCOUNT = "AC" + "b2" * 16
TOKEN = "expiry-test-auth-token"
PATH = "/api/cron/cleanup-recordings"


@pytest.fixture
async def twilio():
    fake = await FakeTwilioMedia(ACCOUNT, TOKEN).start()
    yield fake
    await fake.stop()


async def expired(app, external_id: str, account: str | None = ACCOUNT) -> Recording:
    now = app.extensions["gateway"].clock.now()
    key = f"1/{external_id}.wav"
    writer = recording_storage(app).writer(key)
    await writer.write(b"x" * 10)
    await writer.commit()
    return await Recording.create(
        external_id=external_id,
        account_id=account,
        status="stored",
        storage_key=key,
        size_bytes=10,
        expires_at=now - timedelta(days=1),
    )


async def make(make_app, twilio, *, delete: bool):
    return await make_app(
        plugins={
            "cron": {},
            "twilio_voice": {
                "account_sid": ACCOUNT,
                "auth_token": TOKEN,
                "api_base_url": twilio.base_url,
                "delete_expired_recordings": delete,
            },
        },
        cron_secret=SECRET,
    )


async def test_expired_recordings_are_deleted_at_twilio_once(make_app, twilio, clock):
    app = await make(make_app, twilio, delete=True)
    there, gone, throttled = sid("RE"), sid("RE"), sid("RE")
    twilio.recordings.update({there: wav_bytes(), throttled: wav_bytes()})
    twilio.failures[throttled] = 429
    for external_id in (there, gone, throttled):
        await expired(app, external_id)
    await expired(app, "el_conv_123", account=None)  # an agent's audio: not Twilio's

    body = await (await app.test_client().get(PATH, headers=bearer())).get_json()
    assert body["figures"]["expired"] == 4 and body["figures"]["announced"] == 4
    assert await WebhookEvent.filter(type="voice.recording.expired").count() == 4

    await run_pending_jobs(app)
    assert twilio.deleted == [there]  # 404 for the one already gone: done too
    paths = sorted(hit.path for hit in twilio.hits)
    assert paths == sorted(
        f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{s}.json" for s in (there, gone, throttled)
    )
    assert (
        await Job.filter(
            handler="twilio_voice.delete_expired_recording", status="succeeded"
        ).count()
        == 3
    )
    # Twilio said 429 with Retry-After: 7; after it, the retry deletes it.
    del twilio.failures[throttled]
    clock.advance(seconds=8)
    await run_pending_jobs(app)
    assert twilio.deleted == [there, throttled]

    # A forced rerun announces nothing again: the rows are expired, the keys are used.
    body = await (await app.test_client().get(PATH + "?force=true", headers=bearer())).get_json()
    assert body["figures"]["announced"] == 0
    assert await WebhookEvent.filter(type="voice.recording.expired").count() == 4


async def test_without_the_switch_twilio_is_not_asked(make_app, twilio, clock):
    app = await make(make_app, twilio, delete=False)
    there = sid("RE")
    twilio.recordings[there] = wav_bytes()
    await expired(app, there)
    body = await (await app.test_client().get(PATH, headers=bearer())).get_json()
    assert body["figures"]["announced"] == 1  # the event is there for whoever wants it
    await run_pending_jobs(app)
    assert twilio.hits == [] and there in twilio.recordings
