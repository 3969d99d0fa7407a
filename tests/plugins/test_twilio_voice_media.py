"""The recording download job against a real HTTP server standing in for Twilio's media
host: success, 404, slow, oversized, redirects, and URLs on other hosts."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from tortoise.transactions import in_transaction

from gateway.calls.models import Recording
from gateway.calls.recordings import RecordingUpdate, upsert_recording
from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.identity.models import Team
from gateway.storage import recording_storage
from tests.support.fake_twilio import FakeTwilioMedia, OtherHost, sid, wav_bytes

ACCOUNT = "AC" + "a1" * 16
TOKEN = "media-test-auth-token"


@pytest.fixture
async def media():
    fake = await FakeTwilioMedia(ACCOUNT, TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def other():
    host = await OtherHost().start()
    yield host
    await host.stop()


@pytest.fixture
def settings(media):
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "api_base_url": media.base_url,
        "recording_max_bytes": 256 * 1024,
        "recording_timeout_seconds": 0.3,
    }


@pytest.fixture
async def app(make_app, settings):
    return await make_app(plugins={"twilio_voice": settings})


def handler(app):
    gw = app.extensions["gateway"]
    return gw.registry("register_event_handlers")["twilio_voice.download_recording"]


async def run_download(app, recording_sid: str) -> Recording:
    """One attempt of the job, as the worker would run it."""
    gw = app.extensions["gateway"]
    event = SimpleNamespace(type="voice.recording.status", payload={"RecordingSid": recording_sid})
    ctx = JobContext(
        event=event,
        job=SimpleNamespace(attempts=1),
        app=app,
        config=gw.config,
        http=gw.http,
        clock=gw.clock,
    )
    async with app.app_context():
        await handler(app).handler(ctx)
    return await Recording.get(external_id=recording_sid)


async def seed(
    url: str, team: Team | None = None, status: str = "completed", rec_sid: str | None = None
) -> str:
    rec_sid = rec_sid or sid("RE")
    async with in_transaction() as conn:
        rec = await upsert_recording(
            RecordingUpdate(
                external_id=rec_sid,
                provider_status=status,
                source_url=url,
                account_id=ACCOUNT,
                duration_seconds=12,
            ),
            using_db=conn,
        )
        if team is not None:
            rec.team_id = team.id
            await rec.save(using_db=conn)
    return rec_sid


async def test_success_streams_to_storage_with_hash_size_and_retention(app, media, clock):
    team = await Team.create(name="Acme", recording_retention_days=30)
    rec_sid = sid("RE")
    audio = wav_bytes(1.0)
    media.recordings[rec_sid] = audio
    await seed(media.url_for(rec_sid), team, rec_sid=rec_sid)

    rec = await run_download(app, rec_sid)
    assert rec.status == "stored" and rec.error is None
    assert rec.size_bytes == len(audio)
    assert rec.sha256 == hashlib.sha256(audio).hexdigest()
    assert rec.content_type == "audio/x-wav"
    assert rec.expires_at == clock.now() + timedelta(days=30)
    assert rec.storage_key == f"{team.id}/{rec_sid}.wav"
    assert await recording_storage(app).read(rec.storage_key) == audio
    assert media.hits[0].authorization.startswith("Basic ")

    # A second run (a retried job) does not fetch again.
    await run_download(app, rec_sid)
    assert len(media.hits) == 1


async def test_mp3_format_appends_the_extension(make_app, settings, media):
    app = await make_app(plugins={"twilio_voice": {**settings, "recording_format": "mp3"}})
    rec_sid = sid("RE")
    media.recordings[rec_sid] = b"ID3fake-mp3"
    await seed(media.url_for(rec_sid), rec_sid=rec_sid)
    rec = await run_download(app, rec_sid)
    assert media.hits[0].path.endswith(f"/{rec_sid}.mp3")
    assert (rec.status, rec.content_type, rec.storage_key) == (
        "stored",
        "audio/mpeg",
        f"unassigned/{rec_sid}.mp3",
    )


async def test_404_is_recorded_and_not_retried(app, media):
    rec_sid = await seed(media.url_for(sid("RE")))  # the fake does not know it
    with pytest.raises(PermanentFailure):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error, rec.storage_key) == ("failed", "not_found", None)


async def test_429_retries_after_the_hosts_retry_after(app, media):
    busy = sid("RE")
    media.failures[busy] = 429
    rec_sid = await seed(media.url_for(busy))
    with pytest.raises(RetryLater) as info:
        await run_download(app, rec_sid)
    assert info.value.seconds == 7
    assert (await Recording.get(external_id=rec_sid)).error == "http_429"


async def test_server_error_is_retried(app, media):
    flaky = sid("RE")
    media.failures[flaky] = 503
    rec_sid = await seed(media.url_for(flaky))
    with pytest.raises(RuntimeError):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error, rec.attempts) == ("pending", "http_503", 1)
    # Twilio recovers: the next attempt stores the file.
    del media.failures[flaky]
    media.recordings[flaky] = wav_bytes()
    assert (await run_download(app, rec_sid)).status == "stored"


async def test_slow_host_times_out_and_is_retried(app, media):
    slow = sid("RE")
    media.slow.add(slow)
    media.recordings[slow] = wav_bytes()
    rec_sid = await seed(media.url_for(slow))
    with pytest.raises(RuntimeError):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error) == ("pending", "timeout")


async def test_oversized_download_is_aborted_and_nothing_kept(app, media, tmp_path):
    huge = sid("RE")
    media.huge[huge] = 10 * 1024 * 1024  # streamed without a Content-Length
    rec_sid = await seed(media.url_for(huge))
    with pytest.raises(PermanentFailure):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error) == ("failed", "too_large")
    root = tmp_path / "data" / "recordings"
    assert [p for p in root.rglob("*") if p.is_file()] == []


async def test_recording_url_on_another_host_is_refused_without_a_request(app, other):
    rec_sid = await seed(f"{other.base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1")
    with pytest.raises(PermanentFailure):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error) == ("refused", "host_not_allowed")
    assert other.hits == []


async def test_redirect_to_another_host_is_not_followed(app, media, other):
    moved = sid("RE")
    media.redirects[moved] = f"{other.base_url}/steal"
    rec_sid = await seed(media.url_for(moved))
    with pytest.raises(PermanentFailure):
        await run_download(app, rec_sid)
    rec = await Recording.get(external_id=rec_sid)
    assert (rec.status, rec.error) == ("refused", "redirect_not_allowed")
    assert other.hits == []


async def test_redirect_on_the_same_host_is_followed(app, media):
    real, alias = sid("RE"), sid("RE")
    media.recordings[real] = wav_bytes()
    media.redirects[alias] = media.url_for(real)
    rec_sid = await seed(media.url_for(alias))
    rec = await run_download(app, rec_sid)
    assert rec.status == "stored"
    assert [h.path.rsplit("/", 1)[-1] for h in media.hits] == [alias, real]


async def test_listed_media_host_gets_the_redirect_but_never_the_credentials(
    make_app, settings, media, other
):
    app = await make_app(
        plugins={"twilio_voice": {**settings, "media_redirect_hosts": [other.base_url]}}
    )
    moved = sid("RE")
    media.redirects[moved] = f"{other.base_url}/cdn/{moved}"
    rec_sid = await seed(media.url_for(moved))
    rec = await run_download(app, rec_sid)
    assert rec.status == "stored"
    assert [(h.path, h.authorization) for h in other.hits] == [(f"/cdn/{moved}", None)]


async def test_not_ready_recordings_are_left_alone(app, media):
    rec_sid = await seed(media.url_for(sid("RE")), status="in-progress")
    rec = await run_download(app, rec_sid)
    assert rec.status == "in_progress"
    assert media.hits == []
