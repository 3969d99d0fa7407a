"""Cross-process wake-ups on PostgreSQL.

A process that commits jobs sends ``NOTIFY gateway_jobs`` (:class:`Announcer`); every
worker, in-process or ``gateway worker``, ``LISTEN``s on a connection of its own
(:class:`Listener`) and wakes at once, instead of at its next ``job_poll_seconds`` poll.
Notifications are hints: a lost one (connection down, process restarting) only means
the job waits for the poll, which keeps running underneath. SQLite has no equivalent;
workers there wake for their own process's jobs and poll for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tortoise import connections

from gateway.db_errors import OutageLog

log = logging.getLogger("gateway.jobs")

CHANNEL = "gateway_jobs"
RECONNECT_MAX_SECONDS = 30.0


def asyncpg_dsn(url: str) -> str:
    """The database URL as asyncpg takes it (Tortoise's pool options dropped)."""
    parts = urlsplit(url)
    return parts._replace(scheme="postgresql", query="", fragment="").geturl()


class Announcer:
    """Sends ``NOTIFY`` after jobs were committed, without delaying the caller: a burst
    of commits costs one notification in flight plus at most one more."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def poke(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        while True:
            self._again = False
            try:
                await connections.get("default").execute_query(
                    "SELECT pg_notify($1, '')", [CHANNEL]
                )
            except Exception as exc:  # the poll covers it
                log.info("job wake-up not sent (%s); workers will poll", type(exc).__name__)
                return
            if not self._again:
                return

    async def drain(self) -> None:
        """Wait for a notification in flight (before the database closes)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class Listener:
    """``LISTEN gateway_jobs`` on a dedicated connection; calls ``wake`` for every
    notification, and once after each (re)connect for what was sent while it was not
    listening. Reconnects with backoff when the connection drops."""

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self.dsn = asyncpg_dsn(url)
        self.wake = wake
        self.listening = asyncio.Event()  # tests wait for it
        self._task: asyncio.Task[None] | None = None
        self.outage = OutageLog(log, "job wake-up listener: database")

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def _notified(self, *_args: Any) -> None:
        self.wake()

    async def _run(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                self.outage.ok()
                self.wake()
                delay = 0.5
                await lost.wait()
                # Logged by the outage log: once, whatever the reconnects that follow.
                self.outage.failed(ConnectionError("connection lost"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # workers poll meanwhile
                self.outage.failed(exc)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
