"""The provider of the scale-out proof: a :class:`FakeOAuthServer` (RFC 6749 on
loopback, counting refreshes) with a small notes API behind bearer tokens.

``POST /api/notes`` (JSON ``{"marker", ...}``) creates a note and answers ``{"id"}``;
``GET /api/notes?marker=`` lists the notes carrying that marker (how a handler that
died after sending finds what it created). A token the server no longer knows is
answered 401 ``{"error": "invalid_token"}``, as after :meth:`expire_access_tokens`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp import web

from gateway.testing import FakeOAuthServer
from tests.support.proof_plugin import CLIENT_ID, CLIENT_SECRET


class NotesProvider(FakeOAuthServer):
    def __init__(self, *, note_delay: float = 0.0, **options: Any) -> None:
        super().__init__(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)
        self.note_delay = note_delay  # keeps jobs running long enough to be killed in
        self.notes: list[dict[str, Any]] = []
        self.rejected = 0  # requests refused for a stale token
        self.searches = 0  # marker searches (a handler retried after sending)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/notes", self.create_note)
        app.router.add_get("/api/notes", self.find_notes)

    def _authorized(self, request: web.Request) -> bool:
        if self.bearer_grant(request) is None:
            self.rejected += 1
            return False
        return True

    async def create_note(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "invalid_token"}, status=401)
        body = await request.json()
        if self.note_delay:
            await asyncio.sleep(self.note_delay)
        note = {"id": f"note-{len(self.notes) + 1}", **body}
        self.notes.append(note)
        return web.json_response({"id": note["id"]}, status=201)

    async def find_notes(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "invalid_token"}, status=401)
        self.searches += 1
        marker = request.query.get("marker")
        return web.json_response([n for n in self.notes if n["marker"] == marker])

    def notes_per_marker(self) -> Counter[str]:
        return Counter(n["marker"] for n in self.notes)
