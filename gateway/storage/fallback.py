"""The S3 store in front of a local directory left from local storage.

After ``recording_storage`` is switched to ``"s3"``, recordings that ``gateway storage
migrate`` has not copied yet are still on this machine's disk under the same keys.
Writes go to the bucket only; reads, presigned URLs and deletes look in the bucket
first and in the local directory for a key the bucket does not have, so a recording
row always names a readable copy while the migration runs.
"""

from __future__ import annotations

from gateway.storage.base import BlobInfo, BlobNotFound, BlobStream, BlobWriter
from gateway.storage.local import LocalDiskStorage
from gateway.storage.s3 import S3Storage


class FallbackStorage:
    def __init__(self, primary: S3Storage, local: LocalDiskStorage) -> None:
        self.primary, self.local = primary, local
        self.name = primary.name

    def writer(self, key: str) -> BlobWriter:
        return self.primary.writer(key)

    async def exists(self, key: str) -> bool:
        return await self.primary.exists(key) or await self.local.exists(key)

    async def stat(self, key: str) -> BlobInfo | None:
        return await self.primary.stat(key) or await self.local.stat(key)

    async def read(self, key: str) -> bytes:
        try:
            return await self.primary.read(key)
        except BlobNotFound:
            return await self.local.read(key)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        try:
            return await self.primary.stream(key, start, end)
        except BlobNotFound:
            return await self.local.stream(key, start, end)

    async def presign(self, key: str, seconds: int) -> str | None:
        """A URL for a blob in the bucket; ``None`` (stream it) for one only on disk."""
        if await self.primary.exists(key):
            return await self.primary.presign(key, seconds)
        return await self.local.presign(key, seconds)

    async def delete(self, key: str) -> bool:
        in_bucket = await self.primary.delete(key)
        on_disk = await self.local.delete(key)
        return in_bucket or on_disk

    async def close(self) -> None:
        await self.primary.close()
