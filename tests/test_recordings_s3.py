"""Recordings end to end with the S3 store (moto on loopback): ElevenLabs audio through
the real signed webhook and a Twilio recording through its signed callback and the
download job land in the bucket with the row's sha256; a delivery or download that
fails after parts were uploaded leaves no object and no multipart upload behind."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest

from gateway.calls.models import Recording
from gateway.jobs.worker import run_pending_jobs
from gateway.storage import recording_storage
from gateway.webhooks.models import WebhookEvent
from tests.plugins.test_twilio_voice import (
    ACCOUNT,
    TOKEN,
    call_form,
    post,
    recording_form,
    seed_team,
)
from tests.plugins.test_twilio_voice import settings as twilio_settings
from tests.support.fake_elevenlabs import SECRET, AudioDelivery, send_chunked
from tests.support.fake_twilio import FakeTwilioMedia, sid
from tests.support.s3 import bucket_contents, free_port

MIB = 1024 * 1024


class NotBase64AtTheEnd(AudioDelivery):
    """Valid base64 for most of the audio, then a character base64 does not have."""

    def body_chunks(self) -> Iterator[bytes]:
        *head, tail = list(super().body_chunks())
        yield from head
        yield b"!!!!" + tail


@pytest.fixture
async def s3_app(make_app, moto_server):
    async def build(**plugins):
        return await make_app(
            recording_storage="s3",
            s3=moto_server.settings(part_size_mib=5),
            plugins=plugins,
        )

    return build


async def test_elevenlabs_audio_streams_into_the_bucket(s3_app, clock):
    app = await s3_app(elevenlabs={"webhook_secret": SECRET})
    t = int(clock.now().timestamp())
    delivery = AudioDelivery("conv_s3", audio_bytes=6 * MIB + 123, t=t)  # two parts
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 200, await response.get_data(as_text=True)
    rec = await Recording.get(external_id="conv_s3:audio")
    assert (rec.status, rec.storage_key, rec.size_bytes) == (
        "stored",
        "elevenlabs/conv_s3.mp3",
        6 * MIB + 123,
    )
    assert rec.sha256 == delivery.audio_digest()
    store = recording_storage(app)
    assert await bucket_contents(store) == {"objects": [rec.storage_key], "uploads": []}
    assert hashlib.sha256(await store.read(rec.storage_key)).hexdigest() == rec.sha256
    url = await store.presign(rec.storage_key, 60)
    assert "elevenlabs/conv_s3.mp3?" in url
    assert not (app.extensions["gateway"].config.gateway.data_dir / "recordings").exists()


async def test_elevenlabs_audio_that_breaks_after_a_part_leaves_nothing(s3_app, clock):
    app = await s3_app(elevenlabs={"webhook_secret": SECRET})
    t = int(clock.now().timestamp())
    delivery = NotBase64AtTheEnd("conv_bad", audio_bytes=6 * MIB, t=t)
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 400
    assert await bucket_contents(recording_storage(app)) == {"objects": [], "uploads": []}
    assert await WebhookEvent.all().count() == 0 and await Recording.all().count() == 0


@pytest.fixture
async def media():
    fake = await FakeTwilioMedia(ACCOUNT, TOKEN).start()
    yield fake
    await fake.stop()


async def test_twilio_recording_is_downloaded_into_the_bucket(s3_app, media):
    cfg = twilio_settings(api_base_url=media.base_url, recording_max_bytes=6 * MIB)
    app = await s3_app(twilio_voice=cfg)
    client = app.test_client()
    team = await seed_team()
    call_sid, small, large = sid("CA"), sid("RE"), sid("RE")
    media.recordings[small] = audio = base64.b64encode(b"\x01\x02" * 300_000)
    media.recordings[large] = b"\x00" * (7 * MIB)  # over the limit, after one part
    await post(client, "voice", call_form(call_sid))
    for rec_sid in (small, large):
        form = recording_form(call_sid, rec_sid, media.url_for(rec_sid))
        assert (await post(client, "recording", form)).status_code == 200
    await run_pending_jobs(app)
    rec = await Recording.get(external_id=small)
    assert (rec.status, rec.storage_key) == ("stored", f"{team.id}/{small}.wav")
    assert rec.sha256 == hashlib.sha256(audio).hexdigest()
    refused = await Recording.get(external_id=large)
    assert (refused.status, refused.error) == ("failed", "too_large")
    store = recording_storage(app)
    assert await bucket_contents(store) == {"objects": [rec.storage_key], "uploads": []}
    assert await store.read(rec.storage_key) == audio


async def test_elevenlabs_audio_is_503_while_the_store_is_unreachable(make_app, clock):
    """The sender retries later; nothing is stored meanwhile."""
    closed = {
        "bucket": "recordings",
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "path_style": True,
        "access_key_id": "k",
        "secret_access_key": "s",
        "max_attempts": 1,
    }
    app = await make_app(
        recording_storage="s3", s3=closed, plugins={"elevenlabs": {"webhook_secret": SECRET}}
    )
    delivery = AudioDelivery("conv_down", audio_bytes=100_000, t=int(clock.now().timestamp()))
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "SERVICE_UNAVAILABLE"
    assert await WebhookEvent.all().count() == 0 and await Recording.all().count() == 0
