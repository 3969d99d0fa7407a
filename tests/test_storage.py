"""Recording storage on local disk: streamed writes that only appear when committed."""

from __future__ import annotations

import hashlib

import pytest

from gateway.storage import LocalDiskStorage, StorageError, recording_storage


async def test_commit_makes_the_blob_visible_with_its_hash(tmp_path):
    store = LocalDiskStorage(tmp_path / "rec")
    writer = store.writer("7/RE1.wav")
    for chunk in (b"abc", b"def"):
        await writer.write(chunk)
    assert not await store.exists("7/RE1.wav")  # nothing half-written behind the key
    await writer.commit()
    assert await store.read("7/RE1.wav") == b"abcdef"
    assert (writer.size, writer.hexdigest()) == (6, hashlib.sha256(b"abcdef").hexdigest())
    assert list((tmp_path / "rec" / ".partial").iterdir()) == []


async def test_abort_leaves_nothing(tmp_path):
    store = LocalDiskStorage(tmp_path)
    writer = store.writer("RE2.wav")
    await writer.write(b"x" * 1000)
    await writer.abort()
    assert not await store.exists("RE2.wav")
    assert list((tmp_path / ".partial").iterdir()) == []


async def test_delete_is_idempotent(tmp_path):
    store = LocalDiskStorage(tmp_path)
    writer = store.writer("a/b.wav")
    await writer.commit()
    assert await store.delete("a/b.wav") is True
    assert await store.delete("a/b.wav") is False


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "", "a//b", ".hidden", "a/./b", "a\\b", "x" * 600]
)
def test_keys_cannot_leave_the_store(tmp_path, key):
    store = LocalDiskStorage(tmp_path)
    with pytest.raises(StorageError):
        store.writer(key)
    with pytest.raises(StorageError):
        store.path(key)


async def test_the_app_default_is_under_the_data_dir(make_app, tmp_path):
    app = await make_app()
    store = recording_storage(app)
    assert store.root == tmp_path / "data" / "recordings"
    assert recording_storage(app) is store
