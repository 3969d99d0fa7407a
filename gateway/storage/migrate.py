"""Copy recordings from local disk to the S3 store, verified, resumable.

Every stored recording row (``status = "stored"`` with a ``storage_key``) is looked at
in id order. Its blob is copied under the same key (the bucket's prefix added) by a
streamed multipart upload that hashes the bytes on the way; the upload is completed
only when the sha256 and size match the row, so a damaged local file is reported and
never becomes the bucket's copy. A row whose key is already in the bucket with the
row's size is skipped, so a second run continues where the first stopped.

The row's key is the same in both stores, so what "switches" a row is where the app
reads: with ``recording_storage = "s3"`` the bucket first, the old directory for keys
the bucket lacks (see :mod:`gateway.storage.fallback`). ``delete_local`` frees the disk,
and a local copy is deleted only after the bucket's copy was read back and matched the
row's sha256, so a row always names a readable copy.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.calls.models import Recording
from gateway.storage.base import BlobNotFound, BlobStorage
from gateway.storage.local import LocalDiskStorage


@dataclass
class MigrationReport:
    copied: int = 0
    already: int = 0  # in the bucket before this run
    deleted_local: int = 0
    # One line per row that was not copied (and why).
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.mismatched) + len(self.missing) + len(self.unverifiable)

    def summary(self) -> str:
        return (
            f"copied {self.copied}, already in the bucket {self.already}, "
            f"local copies deleted {self.deleted_local}; not copied: "
            f"{len(self.mismatched)} sha256 mismatch, {len(self.missing)} missing, "
            f"{len(self.unverifiable)} without sha256"
        )


async def _sha256_of(store: BlobStorage, key: str) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    async with await store.stream(key) as stream:
        async for chunk in stream:
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


class Migration:
    def __init__(
        self,
        local: LocalDiskStorage,
        bucket: BlobStorage,
        *,
        delete_local: bool = False,
        concurrency: int = 4,
        on_problem: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.local, self.bucket = local, bucket
        self.delete_local = delete_local
        self.slots = asyncio.Semaphore(concurrency)
        self.on_problem = on_problem
        self.report = MigrationReport()

    def _problem(self, kind: list[str], row: dict[str, Any], why: str) -> None:
        line = f"recording {row['id']} ({row['storage_key']}): {why}"
        kind.append(line)
        self.on_problem(line)

    async def run(self, batch_size: int = 200) -> MigrationReport:
        last_id = 0
        while True:
            rows = (
                await Recording.filter(status="stored", storage_key__isnull=False, id__gt=last_id)
                .order_by("id")
                .limit(batch_size)
                .values("id", "storage_key", "sha256", "size_bytes")
            )
            if not rows:
                return self.report
            last_id = rows[-1]["id"]
            await asyncio.gather(*(self._one(row) for row in rows))

    async def _one(self, row: dict[str, Any]) -> None:
        async with self.slots:
            if not row["sha256"]:
                self._problem(self.report.unverifiable, row, "no sha256 to verify; not copied")
                return
            remote = await self.bucket.stat(row["storage_key"])
            if remote is not None and remote.size == (row["size_bytes"] or 0):
                self.report.already += 1
            elif not await self._copy(row, in_bucket=remote is not None):
                return
            if self.delete_local and await self.local.exists(row["storage_key"]):
                await self._delete_local(row)

    async def _copy(self, row: dict[str, Any], *, in_bucket: bool) -> bool:
        key = row["storage_key"]
        writer = self.bucket.writer(key)
        try:
            try:
                stream = await self.local.stream(key)
            except BlobNotFound:
                await writer.abort()
                why = "the bucket's copy has another size" if in_bucket else "nor in the bucket"
                self._problem(self.report.missing, row, f"no local file, {why}")
                return False
            async with stream:
                async for chunk in stream:
                    await writer.write(chunk)
            if writer.hexdigest() != row["sha256"] or writer.size != (row["size_bytes"] or 0):
                await writer.abort()
                self._problem(
                    self.report.mismatched,
                    row,
                    "local file does not match the row's sha256; not copied",
                )
                return False
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        self.report.copied += 1
        return True

    async def _delete_local(self, row: dict[str, Any]) -> None:
        digest, size = await _sha256_of(self.bucket, row["storage_key"])
        if digest != row["sha256"] or size != (row["size_bytes"] or 0):
            self._problem(
                self.report.mismatched,
                row,
                "the bucket's copy does not match the row's sha256; local copy kept",
            )
            return
        if await self.local.delete(row["storage_key"]):
            self.report.deleted_local += 1
