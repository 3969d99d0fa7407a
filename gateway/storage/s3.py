"""The S3-compatible store (AWS S3, MinIO, R2, ...), through aiobotocore.

Writes stream: up to one part (``part_size_mib``, at least S3's 5 MiB) is buffered, then
sent as a part of a multipart upload; a blob smaller than one part is one PUT. Nothing
is visible under the key until ``commit`` (a PUT, or CompleteMultipartUpload, is atomic
in S3), and ``abort`` calls AbortMultipartUpload so no parts are left behind either (as
a safety net for a process killed mid-upload, give the bucket a lifecycle rule that
aborts incomplete multipart uploads after a day: docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import mimetypes
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway.storage.base import (
    BlobInfo,
    BlobNotFound,
    BlobStream,
    RangeNotSatisfiable,
    StorageError,
    StorageUnavailable,
    check_key,
    check_presign_seconds,
)
from gateway.storage.parts import Part
from gateway.storage.settings import S3Settings

log = logging.getLogger("gateway.storage")

READ_CHUNK = 256 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}


@functools.cache
def _session() -> Any:
    """One botocore session per process: a new one would parse the S3 service model
    (megabytes of JSON) again for every client."""
    from aiobotocore.session import get_session

    return get_session()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _unavailable(operation: str) -> Iterator[None]:
    """botocore's errors as :class:`StorageUnavailable`, named by operation and error
    code only (a message could carry a signed URL)."""
    try:
        yield
    except ClientError as exc:
        raise StorageUnavailable(f"s3 {operation}: {_code(exc) or 'error'}") from None
    except (BotoCoreError, TimeoutError) as exc:
        raise StorageUnavailable(f"s3 {operation}: {type(exc).__name__}") from None


class S3Writer:
    """One object being written; see the module docstring."""

    def __init__(self, store: S3Storage, key: str) -> None:
        self._store = store
        self.key = check_key(key)
        self._object = store.object_key(key)
        self._part = Part()
        self._sha = hashlib.sha256()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._finished = False
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        if self._finished:
            raise StorageError("write after commit or abort")
        self._sha.update(chunk)
        self.size += len(chunk)
        self._part.append(chunk)
        if self._part.size >= self._store.settings.part_size:
            await self._send_part()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    async def _send_part(self) -> None:
        client = await self._store.client()
        bucket = self._store.bucket
        if self._upload_id is None:
            with _unavailable("create_multipart_upload"):
                created = await client.create_multipart_upload(
                    Bucket=bucket, Key=self._object, **self._store.content_type_of(self.key)
                )
            self._upload_id = created["UploadId"]
        # At most one part is held, whatever the blob's size.
        part, self._part = self._part, Part()
        number = len(self._parts) + 1
        with _unavailable("upload_part"):
            sent = await client.upload_part(
                Bucket=bucket,
                Key=self._object,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part.reader(),
            )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def commit(self) -> None:
        if self._finished:
            raise StorageError("commit after commit or abort")
        client = await self._store.client()
        bucket = self._store.bucket
        if self._upload_id is None:
            part, self._part = self._part, Part()
            with _unavailable("put_object"):
                await client.put_object(
                    Bucket=bucket,
                    Key=self._object,
                    Body=part.reader(),
                    **self._store.content_type_of(self.key),
                )
        else:
            if self._part.size:  # the last part may be smaller than the minimum
                await self._send_part()
            with _unavailable("complete_multipart_upload"):
                await client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._object,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        self._finished = True

    async def abort(self) -> None:
        """Forget the buffer and abort the multipart upload, if one was started. Safe to
        call after a failed ``commit`` and while the caller is being cancelled."""
        self._part = Part()
        if self._finished or self._upload_id is None:
            self._finished = True
            return
        self._finished = True
        upload_id, self._upload_id = self._upload_id, None
        # Shielded: an abort that runs because the task was cancelled must still reach
        # the store, or the parts would stay billed behind an invisible upload.
        try:
            await asyncio.shield(self._store.abort_upload(self._object, upload_id))
        except StorageUnavailable as exc:
            # Never mask the error that made the caller abort; the bucket's lifecycle
            # rule for incomplete uploads is the safety net.
            log.warning("could not abort the upload of %s: %s", self.key, exc)


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    async for chunk in body.iter_chunks(READ_CHUNK):
        yield chunk


class S3Storage:
    """Objects under ``prefix`` in one bucket. The client is created on first use, in
    the event loop that uses it, and closed by :meth:`close` (the core's shutdown)."""

    name = "s3"

    def __init__(self, settings: S3Settings) -> None:
        if not settings.bucket:
            raise StorageError("no S3 bucket configured")
        self.settings = settings
        self.bucket: str = settings.bucket
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._presigner: Any = None
        self._lock: asyncio.Lock | None = None

    def object_key(self, key: str) -> str:
        return self.settings.prefix + check_key(key)

    def content_type_of(self, key: str) -> dict[str, str]:
        kind = mimetypes.guess_type(key)[0]
        return {"ContentType": kind} if kind else {}

    # -- the client ----------------------------------------------------------------

    def _client_args(self, endpoint_url: str | None) -> dict[str, Any]:
        from aiobotocore.config import AioConfig

        s = self.settings
        args: dict[str, Any] = {
            "region_name": s.region,
            "endpoint_url": endpoint_url,
            "config": AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path" if s.path_style else "auto"},
                connect_timeout=s.connect_timeout_seconds,
                read_timeout=s.read_timeout_seconds,
                max_pool_connections=s.max_connections,
                retries={"mode": "standard", "max_attempts": s.max_attempts},
                request_checksum_calculation=s.checksums,
                response_checksum_validation=s.checksums,
            ),
        }
        for name, arg in (
            ("access_key_id", "aws_access_key_id"),
            ("secret_access_key", "aws_secret_access_key"),
            ("session_token", "aws_session_token"),
        ):
            value = getattr(s, name)
            if value is not None:
                args[arg] = value.get_secret_value()
        return args

    async def client(self) -> Any:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                session = _session()
                stack = AsyncExitStack()
                s = self.settings
                try:
                    client = await stack.enter_async_context(
                        session.create_client("s3", **self._client_args(s.endpoint_url))
                    )
                    presigner = client
                    if s.presign_endpoint_url and s.presign_endpoint_url != s.endpoint_url:
                        presigner = await stack.enter_async_context(
                            session.create_client("s3", **self._client_args(s.presign_endpoint_url))
                        )
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack, self._presigner, self._client = stack, presigner, client
        return self._client

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._client = self._presigner = None
        if stack is not None:
            await stack.aclose()

    # -- the protocol --------------------------------------------------------------

    def writer(self, key: str) -> S3Writer:
        return S3Writer(self, key)

    async def stat(self, key: str) -> BlobInfo | None:
        client = await self.client()
        with _unavailable("head_object"):
            try:
                head = await client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
        return BlobInfo(size=int(head["ContentLength"]), content_type=head.get("ContentType"))

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    async def read(self, key: str) -> bytes:
        async with await self.stream(key) as stream:
            return b"".join([chunk async for chunk in stream])

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        if start < 0 or (end is not None and end < start):
            raise StorageError("invalid byte range")
        client = await self.client()
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        with _unavailable("get_object"):
            try:
                got = await client.get_object(Bucket=self.bucket, Key=self.object_key(key), **extra)
            except ClientError as exc:
                code = _code(exc)
                if code in _MISSING:
                    raise BlobNotFound(key) from None
                if code == "InvalidRange":
                    size = exc.response.get("Error", {}).get("ActualObjectSize")
                    raise RangeNotSatisfiable(
                        int(str(size)) if str(size).isdigit() else 0
                    ) from None
                raise
        body = got["Body"]
        length = int(got["ContentLength"])
        content_range = got.get("ContentRange")  # "bytes 2-5/10" for a ranged read
        if content_range:
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            first = int(span.split("-")[0])
            size = int(total) if total.isdigit() else first + length
        else:
            first, size = 0, length

        async def close() -> None:
            body.close()

        return BlobStream(
            _body_chunks(body),
            size=size,
            start=first,
            end=first + length - 1,
            content_type=got.get("ContentType"),
            close=close,
        )

    async def presign(self, key: str, seconds: int) -> str | None:
        check_presign_seconds(seconds)
        await self.client()
        with _unavailable("presign"):
            url: str = await self._presigner.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.object_key(key)},
                ExpiresIn=seconds,
            )
        return url

    async def delete(self, key: str) -> bool:
        """S3 answers a DELETE of a missing key like any other, so the blob is looked up
        first: the answer says whether this call removed it."""
        if not await self.exists(key):
            return False
        client = await self.client()
        with _unavailable("delete_object"):
            await client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return True

    # -- housekeeping ----------------------------------------------------------------

    async def abort_upload(self, object_key: str, upload_id: str) -> None:
        client = await self.client()
        with _unavailable("abort_multipart_upload"):
            try:
                await client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
            except ClientError as exc:
                if _code(exc) != "NoSuchUpload":  # already gone is what we wanted
                    raise

    async def ping(self) -> None:
        """HEAD the bucket: reachable, and the credentials may use it.

        :raises StorageUnavailable: naming what failed (never the credentials)."""
        client = await self.client()
        with _unavailable(f"head_bucket '{self.bucket}'"):
            await client.head_bucket(Bucket=self.bucket)
