"""Streaming mode: a large webhook body goes to a temporary file as it arrives.

The body is read chunk by chunk from ``request.body`` (never ``get_data()``, whose
``BODY_TIMEOUT`` timer keeps the request, and its body, alive for a minute after the
response on the stdlib event loop), under the source's size limit and our own deadline.
Chunks are gathered up to :data:`FLUSH_BYTES`, then written and fed to the source's
hashers in a worker thread (hashlib releases the GIL), so the event loop keeps
receiving while the disk and the hash work. Memory stays at a few of those buffers
whatever the body size. The file is created owner-only in ``<data_dir>/spool`` and
removed when the request is done, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

from gateway.errors import PayloadTooLarge, RequestTimeout
from gateway.webhooks.source import SpooledBody

SPOOL_DIR = "spool"
# Chunks are written and hashed in a worker thread this much at a time; meanwhile the
# connection is read only up to backpressure.HIGH_WATER more.
FLUSH_BYTES = 256 * 1024
# Files a crashed process left behind are removed when this old (no live request takes
# that long: sources' deadlines are minutes).
STALE_SECONDS = 24 * 3600


def spool_dir(data_dir: Path) -> Path:
    """``<data_dir>/spool``, created owner-only, with files older than a day (left by a
    process that crashed mid-request) removed. Called once per app."""
    path = Path(data_dir) / SPOOL_DIR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_stale(path, time.time())
    return path


def _write(fh: IO[bytes], hashers: Sequence[Any], chunks: list[bytes]) -> None:
    for chunk in chunks:
        fh.write(chunk)
        for hasher in hashers:
            hasher.update(chunk)


def _remove_stale(directory: Path, now: float) -> None:
    for entry in directory.iterdir():
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_SECONDS:
                entry.unlink()


@contextlib.asynccontextmanager
async def spooled(
    body: AsyncIterator[bytes],
    directory: Path,
    hashers: Sequence[Any],
    limit: int,
    timeout_seconds: float,
) -> AsyncIterator[SpooledBody]:
    """Write ``body`` to a new file in ``directory``, feeding ``hashers`` on the way,
    and yield it; the file is removed on the way out.

    :raises PayloadTooLarge: as soon as more than ``limit`` bytes arrived.
    :raises RequestTimeout: when the whole body did not arrive within the deadline.
    """
    fd, name = tempfile.mkstemp(prefix="body-", dir=directory)  # mode 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            size = await _receive(body, fh, hashers, limit, timeout_seconds)
        yield SpooledBody(path=path, size=size, hashers=hashers)
    finally:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink, no thread hop needed


async def _receive(
    body: AsyncIterator[bytes],
    fh: IO[bytes],
    hashers: Sequence[Any],
    limit: int,
    timeout_seconds: float,
) -> int:
    size = pending = 0
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge()
                chunks.append(chunk)
                pending += len(chunk)
                if pending >= FLUSH_BYTES:
                    await asyncio.to_thread(_write, fh, hashers, chunks)
                    chunks, pending = [], 0
            if chunks:
                await asyncio.to_thread(_write, fh, hashers, chunks)
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time") from None
    return size
