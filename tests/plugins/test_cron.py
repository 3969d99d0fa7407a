"""The ``cron`` plugin's ``cleanup-recordings``, pinged as Vercel Cron does: expired
recordings leave the store in batches and become ``expired``; a file the store cannot
delete is counted and retried by the next run; a second run changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.calls.models import Recording
from gateway.scheduling.models import TaskRun
from gateway.storage import LocalDiskStorage, recording_storage
from tests.support.cron_plugin import SECRET, bearer

PATH = "/api/cron/cleanup-recordings"


class FlakyStorage(LocalDiskStorage):
    """Local disk whose delete fails for the keys in ``broken`` (a store that is down
    for some objects, a permission problem)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.broken: set[str] = set()
        self.deletes: list[str] = []

    async def delete(self, key: str) -> bool:
        self.deletes.append(key)
        if key in self.broken:
            raise PermissionError(f"cannot delete {key}")
        return await super().delete(key)


@pytest.fixture
async def app(make_app, tmp_path):
    app = await make_app(plugins={"cron": {"cleanup_batch_size": 2}}, cron_secret=SECRET)
    app.extensions["recording_storage"] = FlakyStorage(tmp_path / "recordings")
    return app


async def recording(app, name: str, *, expires_in: timedelta | None, status="stored", size=100):
    """A stored recording with its file, expiring ``expires_in`` from the clock's now."""
    now = app.extensions["gateway"].clock.now()
    key = f"7/{name}.wav"
    writer = recording_storage(app).writer(key)
    await writer.write(b"x" * size)
    await writer.commit()
    return await Recording.create(
        external_id=name,
        status=status,
        storage_key=key,
        size_bytes=size,
        expires_at=now + expires_in if expires_in is not None else None,
    )


async def statuses() -> dict[str, str]:
    return dict(await Recording.all().values_list("external_id", "status"))


async def test_cleanup_deletes_expired_recordings_and_retries_the_one_that_failed(app, clock):
    store = recording_storage(app)
    day = timedelta(days=1)
    for i in range(4):
        await recording(app, f"RE{i}", expires_in=-day, size=100 + i)
    await recording(app, "REbroken", expires_in=-day)
    gone = await recording(app, "REgone", expires_in=-day)
    await store.delete(gone.storage_key)  # its file already went (an earlier crash)
    await recording(app, "REfresh", expires_in=day)  # retention not over yet
    await recording(app, "REforever", expires_in=None)  # the team keeps recordings
    await recording(app, "REfailed", expires_in=-day, status="failed")  # never stored
    store.broken.add("7/REbroken.wav")

    resp = await app.test_client().get(PATH, headers=bearer())
    body = await resp.get_json()
    assert resp.status_code == 200 and body["status"] == "succeeded"
    assert body["figures"] == {
        "expired": 5,
        "bytes_freed": 100 + 101 + 102 + 103,
        "already_gone": 1,
        "failed": 1,
        "batches": 3,  # six expired rows, two per batch
        "announced": 5,  # one voice.recording.expired per row marked expired
    }
    assert await statuses() == {
        **{f"RE{i}": "expired" for i in range(4)},
        "REbroken": "stored",
        "REgone": "expired",
        "REfresh": "stored",
        "REforever": "stored",
        "REfailed": "failed",
    }
    for i in range(4):
        assert not await store.exists(f"7/RE{i}.wav")
    for kept in ("REbroken", "REfresh", "REforever", "REfailed"):
        assert await store.exists(f"7/{kept}.wav")

    # Forced again the same day: nothing new, the broken file is tried again.
    store.broken.clear()
    body = await (await app.test_client().get(PATH + "?force=true", headers=bearer())).get_json()
    assert body["figures"] == {
        "expired": 1,
        "bytes_freed": 100,
        "already_gone": 0,
        "failed": 0,
        "batches": 1,
        "announced": 1,
    }
    # The next day: the fresh one has expired too; the rest are done for good.
    clock.advance(days=1)
    store.deletes.clear()
    body = await (await app.test_client().get(PATH, headers=bearer())).get_json()
    assert body["figures"]["expired"] == 1 and store.deletes == ["7/REfresh.wav"]
    body = await (await app.test_client().get(PATH + "?force=true", headers=bearer())).get_json()
    assert body["figures"] == {
        "expired": 0,
        "bytes_freed": 0,
        "already_gone": 0,
        "failed": 0,
        "batches": 0,
        "announced": 0,
    }
    assert await TaskRun.filter(task="cleanup-recordings", status="succeeded").count() == 4


async def test_the_task_is_registered_on_its_schedule(app):
    from gateway.scheduling.runner import runner_of

    task = runner_of(app).tasks["cleanup-recordings"]
    assert task.schedule == "0 3 * * *"
    assert runner_of(app).tasks.keys() == {"cleanup-recordings", "daily-summary", "weekly-report"}
    assert runner_of(app).tasks["daily-summary"].schedule == "0 18 * * *"
    assert runner_of(app).tasks["weekly-report"].schedule == "0 9 * * 1"


def test_bad_plugin_settings_stop_startup(tmp_path):
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.errors import StartupError

    config = load_config(
        data={"gateway": {"data_dir": str(tmp_path)}, "plugins": {"cron": {"batch": 3}}},
        environ={},
    )
    with pytest.raises(StartupError, match="plugin 'cron': key 'batch'"):
        create_app(config)
