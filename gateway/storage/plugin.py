"""Core plugin: closes the recording store's connections when the app stops (the
store itself is built on first use, see :func:`gateway.storage.recording_storage`)."""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.storage import STORAGE_KEY


@hookimpl
async def shutdown(app: Any, config: Any) -> None:
    store = app.extensions.get(STORAGE_KEY)
    close = getattr(store, "close", None)
    if close is not None:
        await close()
