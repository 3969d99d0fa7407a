"""``post_call_audio`` end to end: a chunked, signed delivery of a base64 MP3 goes
through the spool into the recording store, byte-identical, with its recording row, the
delivery's event and a ``voice.call.audio_stored`` event; limits, duplicates and bad
audio leave nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.calls.events import VoiceCallAudioStored
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.identity.models import Team, VoiceAgent
from gateway.storage import recording_storage
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from tests.support.fake_elevenlabs import (
    AGENT,
    OLD_SECRET,
    PATH,
    SECRET,
    AudioDelivery,
    headers,
    send_chunked,
)

MB = 1024 * 1024


def settings(**extra):
    return {"webhook_secret": SECRET, "previous_webhook_secret": OLD_SECRET, **extra}


@pytest.fixture
async def app(make_app):
    return await make_app(plugins={"elevenlabs": settings()})


def now(clock) -> int:
    return int(clock.now().timestamp())


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def data_dir(app) -> Path:
    return Path(app.extensions["gateway"].config.gateway.data_dir)


def leftovers(app) -> dict[str, list[Path]]:
    """Temporary files the gateway might have left: spooled bodies, partial blobs."""
    root = data_dir(app)
    return {
        "spool": files_under(root / "spool"),
        "partial": files_under(root / "recordings" / ".partial"),
    }


def blob_path(app, key: str) -> Path:
    return data_dir(app) / "recordings" / key


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(MB):
            sha.update(block)
    return sha.hexdigest()


@pytest.mark.parametrize("field", ["full_audio", "audio_base_64"])
async def test_50_mb_of_chunked_audio_is_stored_byte_identical(app, clock, field):
    team = await Team.create(name="Acme", recording_retention_days=30)
    await VoiceAgent.create(team=team, agent_id=AGENT)
    call = await Call.create(
        external_id="CA" + "ab" * 16, status="completed", team=team, conversation_id="conv_big"
    )
    # 37.5 MB of audio is 50 MB of base64, generated and sent a chunk at a time.
    delivery = AudioDelivery("conv_big", audio_bytes=37_500_000, t=now(clock), field=field)
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert await response.get_json() == {"received": 1}

    rec = await Recording.get(external_id="conv_big:audio")
    expected = delivery.audio_digest()
    assert rec.storage_key == "elevenlabs/conv_big.mp3"
    stored = blob_path(app, rec.storage_key)
    assert stored.stat().st_size == rec.size_bytes == 37_500_000
    assert sha256_of(stored) == rec.sha256 == expected
    assert rec.status == "stored" and rec.content_type == "audio/mpeg"
    assert rec.team_id == team.id and rec.call_id == call.id
    assert rec.call_external_id == call.external_id
    assert rec.stored_at == clock.now()
    assert rec.expires_at == clock.now() + timedelta(days=30)

    event, stored = await WebhookEvent.all().order_by("id")
    assert event.type == "elevenlabs.post_call_audio"
    assert event.status == ROUTED and event.team_id == team.id
    assert event.dedup_key == "conv_big:post_call_audio"
    assert event.payload == {
        "conversation_id": "conv_big",
        "agent_id": AGENT,
        "call_sid": call.external_id,
        "recording_external_id": "conv_big:audio",
        "storage_key": "elevenlabs/conv_big.mp3",
        "size_bytes": 37_500_000,
        "sha256": expected,
        "content_type": "audio/mpeg",
    }
    analysis = await CallAnalysis.get(conversation_id="conv_big")
    assert analysis.audio_id == rec.id and analysis.call_id == call.id
    assert stored.type == "voice.call.audio_stored" and stored.team_id == team.id
    assert VoiceCallAudioStored.model_validate(stored.payload) == VoiceCallAudioStored(
        analysis_id=analysis.id,
        conversation_id="conv_big",
        call_id=call.id,
        call_sid=call.external_id,
        team_id=team.id,
        agent_id=AGENT,
        provider="elevenlabs",
        recording_id=rec.id,
        storage_key="elevenlabs/conv_big.mp3",
        size_bytes=37_500_000,
        sha256=expected,
    )
    assert leftovers(app) == {"spool": [], "partial": []}


async def test_the_same_audio_twice_is_one_event_one_blob_one_row(make_app, db_kind, clock):
    app = await make_app(db=db_kind, plugins={"elevenlabs": settings()})
    delivery = AudioDelivery("conv_twice", audio_bytes=300_000, t=now(clock))
    for _ in range(2):
        response = await send_chunked(app.test_client(), delivery)
        assert response.status_code == 200
        assert await response.get_json() == {"received": 1}
    types = await WebhookEvent.all().order_by("id").values_list("type", flat=True)
    assert types == ["elevenlabs.post_call_audio", "voice.call.audio_stored"]
    assert await Recording.all().count() == 1 and await CallAnalysis.all().count() == 1
    assert files_under(data_dir(app) / "recordings") == [
        blob_path(app, "elevenlabs/conv_twice.mp3")
    ]
    assert leftovers(app) == {"spool": [], "partial": []}


async def test_a_redelivery_after_a_lost_commit_overwrites_the_same_blob(app, clock):
    """The blob is written before the transaction; if the transaction never happened
    (crash, database down), the redelivery lands on the same key: no orphan."""
    delivery = AudioDelivery("conv_retry", audio_bytes=30_000, t=now(clock))
    await send_chunked(app.test_client(), delivery)
    await WebhookEvent.all().delete()
    await Recording.all().delete()  # as if the first transaction had rolled back
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 200
    (rec,) = await Recording.all()
    assert files_under(data_dir(app) / "recordings") == [blob_path(app, rec.storage_key)]
    assert sha256_of(blob_path(app, rec.storage_key)) == delivery.audio_digest()


async def test_a_conversation_id_is_never_used_as_a_path(app, clock):
    odd = "../../etc/conv with spaces/" + "x" * 80
    delivery = AudioDelivery(odd, audio_bytes=3000, t=now(clock))
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 200
    (rec,) = await Recording.all()
    assert len(rec.external_id) <= 64 and "/" not in rec.external_id
    assert rec.storage_key.startswith("elevenlabs/h") and ".." not in rec.storage_key
    assert blob_path(app, rec.storage_key).is_file()
    assert (await WebhookEvent.get(type="elevenlabs.post_call_audio")).payload[
        "conversation_id"
    ] == odd


class FullDisk:
    """A recording store whose disk fills up after the first write."""

    def __init__(self, inner) -> None:
        self.inner, self.aborted = inner, 0

    def writer(self, key: str):
        store, real = self, self.inner.writer(key)

        class Writer:
            size = 0

            async def write(self, chunk: bytes) -> None:
                if real.size:
                    raise OSError(28, "No space left on device")
                await real.write(chunk)

            async def abort(self) -> None:
                store.aborted += 1
                await real.abort()

        return Writer()


async def test_a_full_disk_is_503_so_the_sender_retries_and_nothing_is_kept(app, clock):
    disk = FullDisk(recording_storage(app))
    app.extensions["recording_storage"] = disk
    delivery = AudioDelivery("conv_full", audio_bytes=2 * MB, t=now(clock))
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "SERVICE_UNAVAILABLE"
    assert disk.aborted == 1
    assert await WebhookEvent.all().count() == 0 and await Recording.all().count() == 0
    assert files_under(data_dir(app) / "recordings") == []
    assert leftovers(app) == {"spool": [], "partial": []}


async def test_unknown_agent_audio_is_stored_unrouted_with_default_retention(make_app, clock):
    app = await make_app(plugins={"elevenlabs": settings(default_retention_days=7)})
    delivery = AudioDelivery("conv_nobody", audio_bytes=3000, t=now(clock), agent_id="agent_x")
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 200
    event, stored = await WebhookEvent.all().order_by("id")
    assert event.status == UNROUTED and event.team_id is None
    assert event.payload["call_sid"] is None
    assert stored.status == UNROUTED and stored.payload["team_id"] is None
    rec = await Recording.get(external_id="conv_nobody:audio")
    assert rec.team_id is None and rec.call_id is None
    assert rec.expires_at == clock.now() + timedelta(days=7)
    assert await recording_storage(app).read(rec.storage_key) == b"".join(delivery.audio_chunks())


async def test_over_the_limit_is_413_and_leaves_nothing(make_app, clock):
    app = await make_app(plugins={"elevenlabs": settings(audio_max_bytes=1 * MB)})
    delivery = AudioDelivery("conv_huge", audio_bytes=2 * MB, t=now(clock))
    response = await send_chunked(app.test_client(), delivery)
    assert response.status_code == 413
    assert (await response.get_json())["code"] == "PAYLOAD_TOO_LARGE"
    # With a Content-Length, refused before reading.
    small = AudioDelivery("conv_huge2", audio_bytes=1 * MB, t=now(clock))
    response = await app.test_client().post(
        PATH, data=small.body(), headers={"ElevenLabs-Signature": small.signature()}
    )
    assert response.status_code == 413
    assert await WebhookEvent.all().count() == 0
    assert await Recording.all().count() == 0
    assert files_under(data_dir(app) / "recordings") == []
    assert leftovers(app) == {"spool": [], "partial": []}


@pytest.mark.parametrize(
    "header",
    [None, "t=1,v0=" + "0" * 64, "garbage"],
    ids=["missing", "stale", "malformed"],
)
async def test_an_unusable_signature_is_refused_before_the_body_is_read(app, clock, header):
    delivery = AudioDelivery("conv_forged", audio_bytes=3 * MB, t=now(clock))
    head = {"ElevenLabs-Signature": header} if header else {}
    conn = app.test_client().request(PATH, method="POST", headers=head)
    async with conn:
        await conn.send(next(delivery.body_chunks()))  # the start of the body, no end
        for _ in range(500):  # the answer comes without the rest of the body
            if conn.status_code is not None:
                break
            await asyncio.sleep(0.01)
        assert conn.status_code == 401
        await conn.send_complete()
    response = await conn.as_response()
    assert (await response.get_json())["code"] == "UNAUTHORIZED"
    assert await WebhookEvent.all().count() == 0
    assert leftovers(app) == {"spool": [], "partial": []}


async def test_a_tampered_audio_body_is_401_and_nothing_is_stored(app, clock):
    delivery = AudioDelivery("conv_tampered", audio_bytes=100_000, t=now(clock))
    body = delivery.body().replace(b"conv_tampered", b"conv_tampereD")
    response = await app.test_client().post(
        PATH, data=body, headers={"ElevenLabs-Signature": delivery.signature()}
    )
    assert response.status_code == 401
    assert files_under(data_dir(app) / "recordings") == []
    assert leftovers(app) == {"spool": [], "partial": []}


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b64: b64.replace("/", "\\/"), id="escaped slashes"),
        pytest.param(
            lambda b64: "\\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)),
            id="MIME line breaks",
        ),
        pytest.param(lambda b64: b64.rstrip("="), id="no padding"),
        pytest.param(lambda b64: b64.replace("A", "\\u0041"), id="unicode escapes"),
    ],
)
async def test_json_escapes_in_the_audio_string_are_decoded(app, clock, encode):
    audio = bytes(range(256)) * 40 + b"\xff\xfe"  # base64 with '/', '+' and padding
    b64 = encode(base64.b64encode(audio).decode())
    t = now(clock)
    body = (
        '{ "type" : "post_call_audio" , "data" : {\n  "conversation_id": "conv_esc",\n'
        f'  "full_audio" :\t"{b64}"\n}} , "event_timestamp": {t} }}'
    ).encode()
    json.loads(body)  # the test's body is valid JSON
    response = await app.test_client().post(PATH, data=body, headers=headers(body, t))
    assert response.status_code == 200, await response.get_data(as_text=True)
    rec = await Recording.get(external_id="conv_esc:audio")
    assert await recording_storage(app).read(rec.storage_key) == audio


@pytest.mark.parametrize("audio", ["not base64!", "", "QUJD=QUJD", "\\\\"])
async def test_bad_audio_is_400_and_leaves_no_blob(app, clock, audio):
    t = now(clock)
    body = json.dumps(
        {"type": "post_call_audio", "data": {"conversation_id": "conv_bad", "full_audio": audio}}
    ).encode()
    response = await app.test_client().post(PATH, data=body, headers=headers(body, t))
    assert response.status_code == 400
    assert await WebhookEvent.all().count() == 0
    assert await Recording.all().count() == 0
    assert files_under(data_dir(app) / "recordings") == []
    assert leftovers(app) == {"spool": [], "partial": []}


async def test_spooled_bodies_are_owner_only(app, clock, monkeypatch):
    from gateway.webhooks import spool

    modes: list[int] = []
    original = spool._receive

    async def spy(body, fh, *args):
        modes.append(os.fstat(fh.fileno()).st_mode & 0o777)
        return await original(body, fh, *args)

    monkeypatch.setattr(spool, "_receive", spy)
    delivery = AudioDelivery("conv_mode", audio_bytes=3000, t=now(clock))
    assert (await send_chunked(app.test_client(), delivery)).status_code == 200
    assert modes == [0o600]
    assert (data_dir(app) / "spool").stat().st_mode & 0o777 == 0o700
