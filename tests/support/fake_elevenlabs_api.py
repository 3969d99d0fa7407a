"""The ElevenLabs conversations API on loopback, as documented:

- ``GET /v1/convai/conversations`` (``agent_id``, ``call_start_after_unix``,
  ``page_size`` <= 100, default 30, ``cursor``) -> ``{"conversations": [summary, ...],
  "has_more": bool, "next_cursor": str | null}``, newest first
  (https://elevenlabs.io/docs/api-reference/conversations/list; the SDK's
  ``GetConversationsPageResponseModel`` / ``ConversationSummaryResponseModel``);
- ``GET /v1/convai/conversations/{conversation_id}`` -> the conversation
  (https://elevenlabs.io/docs/api-reference/conversations/get), 404 when unknown.

Both need ``xi-api-key``. ``throttle(n, retry_after)`` makes the next ``n`` requests a
429 with that ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.testing import serve

API_KEY = "xi-test-key-0123456789"
LIST = "/v1/convai/conversations"


def summary(conversation: dict[str, Any]) -> dict[str, Any]:
    meta = conversation.get("metadata") or {}
    analysis = conversation.get("analysis") or {}
    return {
        "agent_id": conversation["agent_id"],
        "agent_name": "Ava",
        "conversation_id": conversation["conversation_id"],
        "start_time_unix_secs": meta.get("start_time_unix_secs", 0),
        "call_duration_secs": meta.get("call_duration_secs", 0),
        "message_count": len(conversation.get("transcript") or []),
        "status": conversation["status"],
        "call_successful": analysis.get("call_successful", "unknown"),
        "transcript_summary": analysis.get("transcript_summary"),
        "direction": "inbound",
    }


@dataclass
class FakeConversationsApi:
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    max_page_size: int = 100  # the API may return fewer than asked: paging is by cursor
    deleted: set[str] = field(default_factory=set)  # listed, but 404 when fetched
    _throttle: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, conversation: dict[str, Any]) -> None:
        self.conversations[conversation["conversation_id"]] = conversation

    def throttle(self, times: int, retry_after: str = "7") -> None:
        self._throttle.extend([retry_after] * times)

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.path, dict(request.query)))
        if self._throttle:
            return web.json_response(
                {"detail": {"status": "too_many_concurrent_requests"}},
                status=429,
                headers={"Retry-After": self._throttle.pop(0)},
            )
        if request.headers.get("xi-api-key") != API_KEY:
            return web.json_response({"detail": {"status": "invalid_api_key"}}, status=401)
        return None

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        q = request.query
        size = int(q.get("page_size", "30"))
        if not 1 <= size <= 100:
            return web.json_response({"detail": "page_size must be 1..100"}, status=422)
        after = int(q.get("call_start_after_unix", "0"))
        found = sorted(
            (
                summary(c)
                for c in self.conversations.values()
                if c["agent_id"] == q.get("agent_id", c["agent_id"])
                and (c.get("metadata") or {}).get("start_time_unix_secs", 0) > after
            ),
            key=lambda s: (-s["start_time_unix_secs"], s["conversation_id"]),
        )
        offset = int(base64.urlsafe_b64decode(q["cursor"]).decode()) if "cursor" in q else 0
        size = min(size, self.max_page_size)
        page = found[offset : offset + size]
        more = offset + size < len(found)
        cursor = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
        return web.json_response({"conversations": page, "has_more": more, "next_cursor": cursor})

    async def _get(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        cid = request.match_info["conversation_id"]
        found = self.conversations.get(cid) if cid not in self.deleted else None
        if found is None:
            return web.json_response({"detail": {"status": "conversation_not_found"}}, status=404)
        return web.json_response(found)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(LIST, self._list)
        app.router.add_get(LIST + "/{conversation_id}", self._get)
        return app

    async def start(self) -> FakeConversationsApi:
        self.runner, self.port = await serve(self.app(), access_log=None)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def details_fetched(self) -> list[str]:
        return [path.rsplit("/", 1)[1] for path, _ in self.requests if path != LIST]


@contextmanager
def in_thread(api: FakeConversationsApi) -> Iterator[FakeConversationsApi]:
    """Serve ``api`` from its own thread and loop, for a synchronous test that runs the
    command line (which runs its own event loop)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(api.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield api
    finally:
        asyncio.run_coroutine_threadsafe(api.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
