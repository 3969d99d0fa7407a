"""The recording store's protocol on both stores (local disk, and S3 through moto's
server on loopback): streamed writes that only appear when committed, aborts that leave
nothing (no object, no multipart upload), ranged streamed reads, presigned URLs,
idempotent deletes; and the S3 store as the app's configured store."""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.config import load_config
from gateway.errors import StartupError
from gateway.storage import (
    BlobNotFound,
    LocalDiskStorage,
    RangeNotSatisfiable,
    StorageError,
    StorageUnavailable,
    recording_storage,
)
from gateway.storage.fallback import FallbackStorage
from gateway.storage.s3 import S3Storage
from gateway.storage.settings import S3Settings
from tests.support.s3 import bucket_contents, free_port

MIB = 1024 * 1024
BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
async def s3_store(moto_server):
    store = S3Storage(S3Settings(**moto_server.settings(part_size_mib=5)))
    yield store
    await store.close()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalDiskStorage(tmp_path / "rec")
    return request.getfixturevalue("s3_store")


async def put(store, key: str, data: bytes) -> None:
    writer = store.writer(key)
    await writer.write(data)
    await writer.commit()


async def collect(stream) -> bytes:
    async with stream:
        return b"".join([chunk async for chunk in stream])


async def test_a_blob_appears_only_on_commit_with_its_hash(store):
    writer = store.writer("7/RE1.wav")
    for chunk in (b"abc", b"def"):
        await writer.write(chunk)
    assert not await store.exists("7/RE1.wav")
    await writer.commit()
    assert await store.read("7/RE1.wav") == b"abcdef"
    assert (writer.size, writer.hexdigest()) == (6, hashlib.sha256(b"abcdef").hexdigest())
    info = await store.stat("7/RE1.wav")
    assert info.size == 6 and info.content_type == "audio/x-wav"
    assert await store.stat("7/other.wav") is None


async def test_ranged_streamed_reads(store):
    await put(store, "r/a.mp3", BODY)
    whole = await store.stream("r/a.mp3")
    assert (whole.size, whole.start, whole.end, whole.length) == (10240, 0, 10239, 10240)
    assert await collect(whole) == BODY
    middle = await store.stream("r/a.mp3", 100, 199)
    assert (middle.size, middle.start, middle.end) == (10240, 100, 199)
    assert await collect(middle) == BODY[100:200]
    tail = await store.stream("r/a.mp3", 10000)
    assert (tail.start, tail.end, await collect(tail)) == (10000, 10239, BODY[10000:])
    past = await store.stream("r/a.mp3", 10230, 99999)  # cut to the last byte, as HTTP does
    assert (past.end, await collect(past)) == (10239, BODY[10230:])
    with pytest.raises(RangeNotSatisfiable) as refused:
        await store.stream("r/a.mp3", 10240)
    assert refused.value.size == 10240
    with pytest.raises(BlobNotFound):
        await store.stream("r/missing.mp3")
    with pytest.raises(BlobNotFound):
        await store.read("r/missing.mp3")
    with pytest.raises(StorageError):
        await store.stream("r/a.mp3", 5, 4)


async def test_an_empty_blob_streams_empty(store):
    await put(store, "e/empty.wav", b"")
    stream = await store.stream("e/empty.wav")
    assert (stream.size, stream.length, await collect(stream)) == (0, 0, b"")


async def test_abort_leaves_nothing(store):
    writer = store.writer("RE2.wav")
    await writer.write(b"x" * 1000)
    await writer.abort()
    assert not await store.exists("RE2.wav")


async def test_delete_is_idempotent(store):
    await put(store, "a/b.wav", b"1")
    assert await store.delete("a/b.wav") is True
    assert await store.delete("a/b.wav") is False
    assert not await store.exists("a/b.wav")


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", ".hidden", "a\\b"])
async def test_keys_cannot_leave_the_store(store, key):
    with pytest.raises(StorageError):
        store.writer(key)
    with pytest.raises(StorageError):
        await store.stream(key)


async def test_local_disk_has_no_presigned_urls(tmp_path):
    store = LocalDiskStorage(tmp_path)
    await put(store, "k.wav", b"1")
    assert await store.presign("k.wav", 60) is None
    with pytest.raises(StorageError):
        await store.presign("k.wav", 0)


# -- S3 only ------------------------------------------------------------------------


async def test_12_mb_streams_up_in_parts_never_held_whole(s3_store):
    """Written 64 KiB at a time with 5 MiB parts: the upload is multipart (three parts)
    and the process never holds the body (tracemalloc peak under one body's size and
    under two parts)."""
    size, rng, sha = 12 * 1000 * 1000, random.Random(5), hashlib.sha256()
    writer = s3_store.writer("big/conv.mp3")
    await s3_store.client()  # the client's own setup is not part of the upload
    tracemalloc.start()
    try:
        left = size
        while left:
            chunk = rng.randbytes(min(64 * 1024, left))
            sha.update(chunk)
            left -= len(chunk)
            await writer.write(chunk)
            if left == size // 2:
                # Half-way: parts are uploaded, nothing is visible under the key yet.
                assert (await bucket_contents(s3_store))["objects"] == []
        await writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size and peak < 2 * 5 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert writer.hexdigest() == sha.hexdigest() and writer.size == size
    client = await s3_store.client()
    head = await client.head_object(Bucket=s3_store.bucket, Key="big/conv.mp3")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert head["ContentType"] == "audio/mpeg"
    streamed = hashlib.sha256()
    async with await s3_store.stream("big/conv.mp3") as stream:
        async for chunk in stream:
            streamed.update(chunk)
    assert streamed.hexdigest() == sha.hexdigest()
    assert await bucket_contents(s3_store) == {"objects": ["big/conv.mp3"], "uploads": []}


async def test_an_aborted_multipart_upload_leaves_no_object_and_no_upload(s3_store):
    writer = s3_store.writer("7/RE3.wav")
    await writer.write(b"a" * (6 * MIB))  # past one part: the multipart upload exists
    assert await bucket_contents(s3_store) == {"objects": [], "uploads": ["7/RE3.wav"]}
    await writer.abort()
    assert await bucket_contents(s3_store) == {"objects": [], "uploads": []}
    await writer.abort()  # twice is harmless


async def test_a_writer_cancelled_mid_upload_is_aborted(s3_store):
    """As the Twilio download does: ``except BaseException: await writer.abort()``, here
    while the task is being cancelled."""
    writer = s3_store.writer("7/RE4.wav")
    started = asyncio.Event()

    async def download() -> None:
        try:
            await writer.write(b"b" * (5 * MIB))
            started.set()
            await asyncio.Event().wait()  # a sender that stalls
        except BaseException:
            await writer.abort()
            raise

    task = asyncio.create_task(download())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await bucket_contents(s3_store) == {"objects": [], "uploads": []}


async def test_presigned_url_fetches_the_blob_and_says_when_it_expires(s3_store):
    await put(s3_store, "p/a.mp3", BODY)
    url = await s3_store.presign("p/a.mp3", 120)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200 and await response.read() == BODY
        async with http.get(url, headers={"Range": "bytes=0-9"}) as response:
            assert response.status == 206 and await response.read() == BODY[:10]
    # moto does not enforce expiry; S3 does, from what the signed URL says:
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "test-secret-key" not in url
    with pytest.raises(StorageError):
        await s3_store.presign("p/a.mp3", 8 * 24 * 3600)


async def test_presigned_urls_can_name_another_endpoint(moto_server):
    settings = moto_server.settings(presign_endpoint_url="https://media.example.com")
    store = S3Storage(S3Settings(**settings))
    try:
        await put(store, "k.mp3", b"1")
        url = await store.presign("k.mp3", 60)
    finally:
        await store.close()
    assert url.startswith(f"https://media.example.com/{settings['bucket']}/k.mp3?")


async def test_prefix_is_prepended_in_the_bucket(moto_server):
    store = S3Storage(S3Settings(**moto_server.settings(prefix="/tenant-a/rec/")))
    try:
        await put(store, "7/a.wav", b"1")
        assert await bucket_contents(store) == {"objects": ["tenant-a/rec/7/a.wav"], "uploads": []}
        assert await store.read("7/a.wav") == b"1"
    finally:
        await store.close()


async def test_an_unreachable_store_is_unavailable_not_a_crash():
    closed = f"http://127.0.0.1:{free_port()}"
    store = S3Storage(
        S3Settings(bucket="nowhere", endpoint_url=closed, path_style=True, max_attempts=1)
    )
    try:
        writer = store.writer("a.wav")
        await writer.write(b"1")
        with pytest.raises(StorageUnavailable) as failed:
            await writer.commit()
        await writer.abort()
        assert "put_object" in str(failed.value)
        assert isinstance(failed.value, ConnectionError)  # webhooks answer 503
        with pytest.raises(StorageUnavailable):
            await store.ping()
    finally:
        await store.close()


# -- the app's store -------------------------------------------------------------------


async def test_the_app_uses_the_bucket_when_configured(make_app, moto_server):
    app = await make_app(recording_storage="s3", s3=moto_server.settings())
    store = recording_storage(app)
    assert isinstance(store, S3Storage) and store.name == "s3"
    await put(store, "a.wav", b"1")
    assert await store.read("a.wav") == b"1"


async def test_recordings_left_on_disk_stay_readable_after_the_switch(make_app, moto_server):
    """Switched to S3 before ``gateway storage migrate`` ran: a key the bucket lacks is
    read (and deleted) from the old directory; new blobs go to the bucket."""
    local_app = await make_app()
    await put(recording_storage(local_app), "7/old.wav", b"old")
    app = await make_app(recording_storage="s3", s3=moto_server.settings())
    store = recording_storage(app)
    assert isinstance(store, FallbackStorage)
    await put(store, "7/new.wav", b"new")
    assert await store.read("7/old.wav") == b"old" and await store.read("7/new.wav") == b"new"
    assert await store.presign("7/old.wav", 60) is None  # stream it
    assert (await store.presign("7/new.wav", 60)).startswith(moto_server.url)
    assert await bucket_contents(store.primary) == {"objects": ["7/new.wav"], "uploads": []}
    assert await store.delete("7/old.wav") is True and not await store.exists("7/old.wav")


def test_s3_needs_a_bucket_and_its_credentials(monkeypatch):
    with pytest.raises(StartupError, match=r"needs \[gateway\.s3\] bucket"):
        load_config(data={"gateway": {"recording_storage": "s3"}}, environ={})
    monkeypatch.delenv("NO_SUCH_S3_SECRET", raising=False)
    table = {"bucket": "recs", "secret_access_key": {"env": "NO_SUCH_S3_SECRET"}}
    with pytest.raises(StartupError, match="NO_SUCH_S3_SECRET is not set"):
        load_config(data={"gateway": {"recording_storage": "s3", "s3": table}}, environ={})
    monkeypatch.setenv("NO_SUCH_S3_SECRET", "s3cr3t-value-123")
    config = load_config(data={"gateway": {"recording_storage": "s3", "s3": table}}, environ={})
    assert config.redacted()["gateway"]["s3"]["secret_access_key"] == "**********"
