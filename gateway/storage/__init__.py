"""Blob storage for recordings: the protocol, and the store an app uses.

Writers stream: a blob is written chunk by chunk, hashed on the way, and only becomes
visible under its key when committed, so a crash or an aborted download never leaves a
half blob behind a key. Readers stream too (with an optional byte range, for an audio
player's seeks), or ask for a short-lived URL the browser fetches from the store itself.

Two stores implement it: local disk under ``<data_dir>/recordings`` (the default) and an
S3-compatible bucket (``[gateway] recording_storage = "s3"``, settings in
``[gateway.s3]``). A key is the same in both (the S3 store adds its prefix), so a
recording row's ``storage_key`` names its blob in whichever store holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.storage.base import (
    MAX_PRESIGN_SECONDS,
    BlobInfo,
    BlobNotFound,
    BlobStorage,
    BlobStream,
    BlobWriter,
    RangeNotSatisfiable,
    StorageError,
    StorageUnavailable,
    check_key,
    check_range,
)
from gateway.storage.local import LocalDiskStorage, LocalWriter

__all__ = [
    "MAX_PRESIGN_SECONDS",
    "BlobInfo",
    "BlobNotFound",
    "BlobStorage",
    "BlobStream",
    "BlobWriter",
    "LocalDiskStorage",
    "LocalWriter",
    "RangeNotSatisfiable",
    "StorageError",
    "StorageUnavailable",
    "check_key",
    "check_range",
    "local_storage",
    "recording_storage",
]

STORAGE_KEY = "recording_storage"


def local_storage(config: Any, *, create: bool = True) -> LocalDiskStorage:
    """The local-disk store under ``<data_dir>/recordings``."""
    return LocalDiskStorage(Path(config.gateway.data_dir) / "recordings", create=create)


def recording_storage(app: Any) -> BlobStorage:
    """The app's recording store, built once from ``[gateway] recording_storage``
    (tests may put another one in ``app.extensions["recording_storage"]``).

    With ``"s3"``, a ``<data_dir>/recordings`` directory left from local storage is
    still read (and deleted from) for keys the bucket does not have, so recordings not
    yet copied by ``gateway storage migrate`` stay readable."""
    store = app.extensions.get(STORAGE_KEY)
    if store is None:
        store = build_storage(app.extensions["gateway"].config)
        app.extensions[STORAGE_KEY] = store
    return store


def build_storage(config: Any) -> BlobStorage:
    settings = config.gateway
    if settings.recording_storage != "s3":
        return local_storage(config)
    from gateway.storage.s3 import S3Storage

    s3 = S3Storage(settings.s3)
    local = local_storage(config, create=False)
    if not local.root.is_dir():
        return s3
    from gateway.storage.fallback import FallbackStorage

    return FallbackStorage(s3, local)
