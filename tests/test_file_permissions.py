"""What the gateway writes to disk is readable by its own user only: the SQLite database
with its -wal and -shm files, the secrets file, and the recordings (directories and
files), whatever the process umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.config import load_config
from gateway.identity.models import Team
from gateway.storage import recording_storage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Any:
    old = os.umask(0o002)  # a permissive umask: the modes must not depend on it
    yield
    os.umask(old)


async def start(data_dir: Path) -> Any:
    config = load_config(data={"gateway": {"data_dir": str(data_dir)}}, environ={})
    app = create_app(config)
    test_app = app.test_app()
    await test_app.startup()
    return app, test_app


async def test_database_and_its_wal_files_are_owner_only(tmp_path: Path, open_umask: Any) -> None:
    data = tmp_path / "data"
    _app, test_app = await start(data)
    try:
        await Team.create(name="Acme")  # a write: the -wal and -shm files exist now
        files = [data / "gateway.db", data / "gateway.db-wal", data / "gateway.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(data / "secrets.json") == 0o600
    finally:
        await test_app.shutdown()


async def test_a_world_readable_database_from_before_is_tightened(
    tmp_path: Path, open_umask: Any
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gateway.db").touch(mode=0o644)
    os.chmod(data / "gateway.db", 0o644)
    _app, test_app = await start(data)
    try:
        assert mode(data / "gateway.db") == 0o600
    finally:
        await test_app.shutdown()


async def test_recordings_are_owner_only(tmp_path: Path, open_umask: Any) -> None:
    data = tmp_path / "data"
    app, test_app = await start(data)
    try:
        writer = recording_storage(app).writer("7/RE0123.wav")
        await writer.write(b"RIFF....WAVE")
        await writer.commit()
        root = data / "recordings"
        for path in (root, root / ".partial", root / "7"):
            assert mode(path) == 0o700, path
        assert mode(root / "7" / "RE0123.wav") == 0o600
    finally:
        await test_app.shutdown()
