"""The local-disk store: files under one root directory, created owner-only.

A writer writes to ``<root>/.partial/<random>``, renamed onto its key on commit, so a
blob never appears half written.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from gateway.storage.base import (
    BlobInfo,
    BlobNotFound,
    BlobStream,
    check_key,
    check_presign_seconds,
    check_range,
)

READ_CHUNK = 256 * 1024


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


async def _file_chunks(fh: BinaryIO, length: int) -> AsyncIterator[bytes]:
    left = length
    while left > 0:
        chunk = await asyncio.to_thread(fh.read, min(READ_CHUNK, left))
        if not chunk:  # the file shrank under us: end the stream short, never hang
            return
        left -= len(chunk)
        yield chunk


class LocalDiskStorage:
    """Files under one root directory, created owner-only."""

    name = "local"

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = Path(root)
        if create:
            owner_only_dir(self.root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def writer(self, key: str) -> LocalWriter:
        return LocalWriter(self.root, key)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    async def stat(self, key: str) -> BlobInfo | None:
        path = self.path(key)
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        return BlobInfo(size=size, content_type=mimetypes.guess_type(path.name)[0])

    async def read(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        path = self.path(key)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        try:
            size = os.fstat(fh.fileno()).st_size
            first, last = check_range(size, start, end)
            await asyncio.to_thread(fh.seek, first)
        except BaseException:
            fh.close()
            raise

        async def close() -> None:
            fh.close()

        return BlobStream(
            _file_chunks(fh, last - first + 1),
            size=size,
            start=first,
            end=last,
            content_type=mimetypes.guess_type(path.name)[0],
            close=close,
        )

    async def presign(self, key: str, seconds: int) -> str | None:
        """Local files have no URL of their own: stream them."""
        check_key(key)
        check_presign_seconds(seconds)
        return None

    async def delete(self, key: str) -> bool:
        """Remove the blob; ``False`` when it was already gone (deleting is idempotent)."""
        path = self.path(key)
        try:
            # In a thread: an unlink waits on the disk (milliseconds on a busy one), and
            # callers delete many at once (cleanup-recordings: 8 in flight).
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
