"""Backpressure for request bodies that are streamed to disk.

Quart takes a request body off the connection as fast as the sender sends it and keeps
what the view has not consumed yet in memory, without bound. A view that writes the
body to a file chunk by chunk therefore only bounds memory if the disk keeps up: on
loopback, one 100 MB upload was measured 20 MB ahead of it (bench/audio.py).

Here the receiving side waits while more than :data:`HIGH_WATER` bytes are waiting
for the view, so Hypercorn stops reading the socket (its queue to the app is bounded)
and TCP slows the sender down. This holds from the first byte, before the view has
even started. A view that awaits the whole body instead (``get_data``, ``get_json``,
url-encoded ``form``) lifts the bound for its request: it needs all of it in memory
anyway, under Quart's ``MAX_CONTENT_LENGTH``, exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from quart import Quart
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request

HIGH_WATER = 256 * 1024


class BoundedBody(Body):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The receiver waits while more than this is buffered; None: never (Quart's way).
        self.high_water: int | None = HIGH_WATER
        self._room = asyncio.Event()

    async def __anext__(self) -> bytes:
        data = await super().__anext__()
        self._room.set()  # what was buffered is the consumer's now
        return data

    def __await__(self) -> Generator[Any, None, Any]:
        # The whole body is wanted at once: waiting for room would never end.
        self.high_water = None
        self._room.set()
        return super().__await__()

    async def room(self) -> None:
        """Return once the buffered data is at most ``high_water`` (or the body is over:
        complete, refused, or no longer read by a bounded consumer)."""
        while (
            self.high_water is not None
            and len(self._data) > self.high_water
            and self._must_raise is None
            and not self._complete.is_set()
        ):
            self._room.clear()
            await self._room.wait()


class BoundedRequest(Request):
    body_class = BoundedBody


class BackpressureConnection(ASGIHTTPConnection):
    """Quart's ASGI HTTP handler, whose receiving loop waits for room in a bounded
    body before asking the server for the next chunk."""

    async def handle_messages(self, request: Request, receive: Any) -> None:
        body = request.body
        while True:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
                elif isinstance(body, BoundedBody):
                    await body.room()
            elif message["type"] == "http.disconnect":
                return


def install(app: Quart) -> None:
    """Bound every request body that is read chunk by chunk."""
    app.request_class = BoundedRequest
    app.asgi_http_class = BackpressureConnection
