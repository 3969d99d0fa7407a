"""The two calls of the ElevenLabs API the reconciliation makes, with ``xi-api-key``:

- ``GET /v1/convai/conversations?agent_id=&call_start_after_unix=&page_size=&cursor=``
  -> ``{"conversations": [{conversation_id, agent_id, status, start_time_unix_secs,
  ...}], "has_more": bool, "next_cursor": str | null}``
  (https://elevenlabs.io/docs/api-reference/conversations/list);
- ``GET /v1/convai/conversations/<conversation_id>`` -> the conversation, shaped like a
  ``post_call_transcription``'s ``data``
  (https://elevenlabs.io/docs/api-reference/conversations/get).

A 429 is waited out for its ``Retry-After`` (seconds or an HTTP date, capped) on the
gateway clock, a 5xx or a network error retried a few times with a growing pause;
anything else that is not a 200 is an :class:`ApiError`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger("gateway.plugins.elevenlabs")

LIST_PATH = "/v1/convai/conversations"
PAGE_SIZE = 100  # the API's maximum
ATTEMPTS = 5
MAX_WAIT_SECONDS = 120.0


class ApiError(Exception):
    """The API refused (bad key, bad request) or kept failing."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def retry_after(value: str | None, now: datetime, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_WAIT_SECONDS)


class ConversationsApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        clock: Any,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.waited = 0.0  # seconds spent waiting out 429s (figures)

    async def conversations(self, agent_id: str, after_unix: int) -> AsyncIterator[list[dict]]:
        """The agent's conversations started after ``after_unix``, a page at a time."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {
                "agent_id": agent_id,
                "call_start_after_unix": after_unix,
                "page_size": PAGE_SIZE,
            }
            if cursor:
                params["cursor"] = cursor
            page = await self._get(LIST_PATH, params)
            items = page.get("conversations") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ApiError(f"GET {LIST_PATH}: no conversations list in the answer")
            yield [c for c in items if isinstance(c, dict)]
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not isinstance(cursor, str) or not cursor:
                return

    async def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """One conversation, or ``None`` when the API does not know it (deleted)."""
        try:
            found = await self._get(f"{LIST_PATH}/{quote(conversation_id, safe='')}", {})
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = self.base_url + path
        headers = {"xi-api-key": self.api_key, "Accept": "application/json"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.http.get(
                    url, params=params, headers=headers, timeout=self.timeout
                ) as resp:
                    if resp.status == 200:
                        return await resp.json(content_type=None)
                    if resp.status == 429 or resp.status >= 500:
                        wait = 2.0**attempt
                        if resp.status == 429:
                            wait = retry_after(
                                resp.headers.get("Retry-After"), self.clock.now(), wait
                            )
                        reason = f"HTTP {resp.status}"
                    else:
                        raise ApiError(f"GET {path}: HTTP {resp.status}", resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                wait, reason = 2.0**attempt, type(exc).__name__
            except ValueError:  # a 200 whose body is not JSON
                raise ApiError(f"GET {path}: the answer is not JSON") from None
            if attempt == ATTEMPTS:
                raise ApiError(f"GET {path}: {reason} after {ATTEMPTS} attempts")
            log.info("elevenlabs api: %s on %s, waiting %.1fs", reason, path, wait)
            self.waited += wait
            await self.clock.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
