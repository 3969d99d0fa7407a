"""Blob storage for recordings: an interface and the local-disk default.

Writers stream: a download is written chunk by chunk to a temporary file, hashed on the
way, and only becomes visible under its key when committed, so a crash or an aborted
download never leaves a half file behind a key. The default lives under
``<data_dir>/recordings``; an S3-compatible store can implement the same protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """A key that is not allowed, or a write that could not complete."""


def check_key(key: str) -> str:
    """Keys are relative slash-separated names; nothing may climb out of the store."""
    if len(key) > 512 or not _SAFE_KEY.match(key) or ".." in key.split("/"):
        raise StorageError("invalid storage key")
    return key


class BlobWriter(Protocol):
    size: int

    async def write(self, chunk: bytes) -> None: ...

    def hexdigest(self) -> str: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class BlobStorage(Protocol):
    """What recording code needs from a store."""

    def writer(self, key: str) -> BlobWriter: ...

    async def exists(self, key: str) -> bool: ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> bool: ...


def owner_only_dir(path: Path) -> None:
    """``path`` and any missing parent below an existing one, created 0700 whatever the
    umask (recordings are personal data)."""
    if path.is_dir():
        return
    owner_only_dir(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


class LocalWriter:
    """Writes to ``<root>/.partial/<random>``, renamed onto the key on commit. Files
    are created 0600 and directories 0700."""

    def __init__(self, root: Path, key: str) -> None:
        self.final = root / check_key(key)
        partial_dir = root / ".partial"
        owner_only_dir(partial_dir)
        self.partial = partial_dir / uuid.uuid4().hex
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: Any = os.fdopen(fd, "wb")
        self._sha = hashlib.sha256()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)
        # Local disk writes of download-sized chunks are short; a thread keeps a slow
        # disk from stalling every request on this worker.
        await asyncio.to_thread(self._file.write, chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    async def commit(self) -> None:
        def finish() -> None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            owner_only_dir(self.final.parent)
            os.replace(self.partial, self.final)

        await asyncio.to_thread(finish)

    async def abort(self) -> None:
        self._file.close()
        self.partial.unlink(missing_ok=True)


class LocalDiskStorage:
    """Files under one root directory, created owner-only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        owner_only_dir(self.root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def writer(self, key: str) -> LocalWriter:
        return LocalWriter(self.root, key)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> bool:
        """Remove the blob; ``False`` when it was already gone (deleting is idempotent)."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def recording_storage(app: Any) -> BlobStorage:
    """The app's recording store (local disk under ``<data_dir>/recordings`` unless
    something registered another one in ``app.extensions["recording_storage"]``)."""
    store = app.extensions.get("recording_storage")
    if store is None:
        data_dir = app.extensions["gateway"].config.gateway.data_dir
        store = LocalDiskStorage(Path(data_dir) / "recordings")
        app.extensions["recording_storage"] = store
    return store
