"""The storage protocol: writers, streamed reads, keys and ranges (see
:mod:`gateway.storage`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol


class StorageError(Exception):
    """A key that is not allowed, or a write that could not complete."""


class BlobNotFound(StorageError):
    """No blob under that key."""


class StorageUnavailable(StorageError, ConnectionError):
    """The store could not be reached, or failed the request: transient, retry later.
    (A ``ConnectionError``, so a webhook that could not write its blob answers 503.)"""


class RangeNotSatisfiable(StorageError):
    """A byte range that starts past the end of the blob (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable (blob of {size} bytes)")
        self.size = size


_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
# The longest presigned URL lifetime S3's signature version 4 allows (seven days).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


def check_key(key: str) -> str:
    """Keys are relative slash-separated names; nothing may climb out of the store."""
    if len(key) > 512 or not _SAFE_KEY.match(key) or ".." in key.split("/"):
        raise StorageError("invalid storage key")
    return key


def check_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """The inclusive byte range ``start``..``end`` of a ``size``-byte blob, as an HTTP
    ``Range: bytes=start-end`` means it (``end`` past the blob is cut to its last byte).

    :raises RangeNotSatisfiable: ``start`` is not inside the blob (an empty blob has
        only the empty range from 0).
    :raises StorageError: a negative ``start`` or an ``end`` before ``start``.
    """
    if start < 0 or (end is not None and end < start):
        raise StorageError("invalid byte range")
    if size == 0 and start == 0 and end is None:
        return 0, -1
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, size - 1 if end is None else min(end, size - 1)


@dataclass(frozen=True)
class BlobInfo:
    size: int
    content_type: str | None = None


class BlobStream:
    """A streamed read: iterate it for the bytes ``start``..``end`` (inclusive) of a blob
    of ``size`` bytes, then close it (``async with`` does), which gives back whatever
    the store held open (a file, an HTTP connection)."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        size: int,
        start: int,
        end: int,
        content_type: str | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._chunks = chunks
        self._close = close
        self.size, self.start, self.end = size, start, end
        self.content_type = content_type

    @property
    def length(self) -> int:
        """Bytes this stream yields (``end - start + 1``)."""
        return self.end - self.start + 1

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            await close()

    async def __aenter__(self) -> BlobStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlobWriter(Protocol):
    """One blob being written: ``write`` chunks, then ``commit`` (the blob appears under
    its key, whole) or ``abort`` (nothing appears, nothing is left behind). Call exactly
    one of them, also when ``write`` raised."""

    size: int

    async def write(self, chunk: bytes) -> None: ...

    def hexdigest(self) -> str:
        """The sha256 of everything written so far, as hex."""
        ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class BlobStorage(Protocol):
    """What recording code needs from a store."""

    name: str  # "local" or "s3"

    def writer(self, key: str) -> BlobWriter: ...

    async def exists(self, key: str) -> bool: ...

    async def stat(self, key: str) -> BlobInfo | None:
        """Size (and content type when the store keeps one); ``None`` when absent."""
        ...

    async def read(self, key: str) -> bytes:
        """The whole blob (small blobs and tests; stream anything else).

        :raises BlobNotFound:"""
        ...

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        """Open a streamed read of bytes ``start``..``end`` (inclusive, as in an HTTP
        ``Range`` header; ``None``: to the end).

        :raises BlobNotFound: no blob under ``key`` (raised here, before any byte).
        :raises RangeNotSatisfiable: ``start`` is past the end (its ``size`` says why).
        """
        ...

    async def presign(self, key: str, seconds: int) -> str | None:
        """A URL that lets whoever holds it GET the blob for ``seconds`` (at most seven
        days), or ``None`` when the store cannot hand out URLs (local disk: stream it
        instead). Give it only to an authorised request."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the blob; ``False`` when it was already gone (deleting is idempotent)."""
        ...


def check_presign_seconds(seconds: int) -> int:
    if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        raise StorageError(f"a presigned URL lives 1 to {MAX_PRESIGN_SECONDS} seconds")
    return seconds
