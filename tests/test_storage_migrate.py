"""``gateway storage migrate --to s3``: local recordings copied into the bucket (moto on
loopback), each verified against its row's sha256 before the upload completes; a damaged
file is reported and not copied; a second run continues; local copies are deleted only
once the bucket's copy reads back right, so every row keeps a readable copy."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.calls.models import Recording
from gateway.cli import main
from gateway.storage import LocalDiskStorage, recording_storage
from gateway.storage.fallback import FallbackStorage
from gateway.storage.migrate import Migration
from gateway.storage.s3 import S3Storage
from gateway.storage.settings import S3Settings
from tests.support.s3 import bucket_contents


async def stored(store: LocalDiskStorage, n: int, data: bytes, **row) -> Recording:
    key = f"7/RE{n}.wav"
    writer = store.writer(key)
    await writer.write(data)
    await writer.commit()
    return await Recording.create(
        external_id=f"RE{n}",
        status="stored",
        storage_key=key,
        sha256=writer.hexdigest(),
        size_bytes=writer.size,
        **row,
    )


@pytest.fixture
async def local_app(make_app):
    return await make_app()


@pytest.fixture
async def bucket(moto_server):
    store = S3Storage(S3Settings(**moto_server.settings(part_size_mib=5)))
    yield store
    await store.close()


async def seed(app, big: int = 3_000_000) -> tuple[LocalDiskStorage, dict[str, Recording]]:
    local = recording_storage(app)
    rows = {
        "ok1": await stored(local, 1, b"one" * 1000),
        "ok2": await stored(local, 2, b"two" * big),  # 9 MB: a multipart copy
        "corrupt": await stored(local, 3, b"three" * 1000),
        "gone": await stored(local, 4, b"four"),
    }
    damaged = local.path(rows["corrupt"].storage_key)
    damaged.write_bytes(b"THREE" + damaged.read_bytes()[5:])  # same size, other bytes
    local.path(rows["gone"].storage_key).unlink()
    await Recording.create(external_id="RE5", status="failed", storage_key=None)
    return local, rows


async def test_copies_verified_reports_damage_and_resumes(local_app, bucket, make_app):
    local, rows = await seed(local_app)
    problems: list[str] = []
    report = await Migration(local, bucket, on_problem=problems.append).run(batch_size=2)
    assert (report.copied, report.already) == (2, 0)
    assert sorted(problems) == [
        f"recording {rows['corrupt'].id} (7/RE3.wav): local file does not match the row's "
        "sha256; not copied",
        f"recording {rows['gone'].id} (7/RE4.wav): no local file, nor in the bucket",
    ]
    assert await bucket_contents(bucket) == {"objects": ["7/RE1.wav", "7/RE2.wav"], "uploads": []}
    for key in ("ok1", "ok2"):
        got = hashlib.sha256(await bucket.read(rows[key].storage_key)).hexdigest()
        assert got == rows[key].sha256

    # A recording stored since: the second run copies it and skips what is there.
    rows["late"] = await stored(local, 6, b"six" * 10)
    again = await Migration(local, bucket).run()
    assert (again.copied, again.already, len(again.mismatched), len(again.missing)) == (1, 2, 1, 1)

    # Switched to the bucket: every row reads, the damaged one still from its disk copy.
    app = await make_app(recording_storage="s3", s3=bucket.settings.model_dump(mode="json"))
    store = recording_storage(app)
    assert isinstance(store, FallbackStorage)
    assert await store.read(rows["corrupt"].storage_key) == local.path("7/RE3.wav").read_bytes()

    # Freeing the disk: only copies whose bucket copy reads back right are deleted.
    freed = await Migration(local, bucket, delete_local=True).run()
    assert (freed.already, freed.deleted_local) == (3, 3)
    left = sorted(p.name for p in local.root.rglob("*.wav"))
    assert left == ["RE3.wav"]
    for row in rows.values():
        if row.external_id != "RE4":
            assert await store.exists(row.storage_key)


async def test_a_bucket_copy_that_does_not_match_keeps_the_local_copy(local_app, bucket):
    local = recording_storage(local_app)
    row = await stored(local, 8, b"eight" * 100)
    writer = bucket.writer(row.storage_key)  # same size, other bytes: someone else's blob
    await writer.write(b"EIGHT" * 100)
    await writer.commit()
    problems: list[str] = []
    report = await Migration(local, bucket, delete_local=True, on_problem=problems.append).run()
    assert report.already == 1 and report.deleted_local == 0
    assert problems == [
        f"recording {row.id} (7/RE8.wav): the bucket's copy does not match the row's "
        "sha256; local copy kept"
    ]
    assert local.path(row.storage_key).exists()


def gateway(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_config(tmp_path: Path, app, s3: dict, storage: str = "local") -> Path:
    gs = app.extensions["gateway"].config.gateway
    lines = [
        "[gateway]",
        f'data_dir = "{gs.data_dir}"',
        f'database_url = "{gs.resolved_database_url}"',
        f'recording_storage = "{storage}"',
        "[gateway.s3]",
        *(f"{k} = {v!r}".replace("True", "true").replace("'", '"') for k, v in s3.items()),
    ]
    config = tmp_path / "migrate.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.slow
async def test_the_command_reports_counts_and_fails_on_a_damaged_file(
    local_app, moto_server, tmp_path, capsys
):
    _, rows = await seed(local_app, big=10)
    config = write_config(tmp_path, local_app, moto_server.settings())
    first = gateway(config, "storage", "migrate", "--to", "s3")
    assert first.returncode == 1, first.stderr
    assert first.stdout.splitlines()[-1] == (
        "copied 2, already in the bucket 0, local copies deleted 0; not copied: "
        "1 sha256 mismatch, 1 missing, 0 without sha256"
    )
    assert f"recording {rows['corrupt'].id} (7/RE3.wav): local file does not match" in (
        first.stderr
    )
    assert "Traceback" not in first.stderr
    # Refused before anything is opened (so it can run in this process).
    argv = ["--config", str(config), "storage", "migrate", "--to", "s3", "--delete-local"]
    assert await asyncio.to_thread(main, argv) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("gateway: storage migrate: --delete-local needs")
