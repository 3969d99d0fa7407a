"""Keeping what the personalization answered with the call, off the answer's path.

The answer must leave by its deadline; the write (a transaction on the call's analysis
row, :func:`gateway.calls.analysis.record_personalization`) need not. Each answer's
record is queued in memory and a background task writes what was queued within 50 ms
in one transaction (:func:`gateway.calls.analysis.record_personalizations`: one insert for the
calls not seen yet, so a burst of calls costs a few statements and one commit, not a
transaction each). A failing batch is
retried record by record, a few times with a pause; a record that still cannot be
written is logged at ERROR with its call id (never silently dropped). Stopping the app
writes what is still queued first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from tortoise.transactions import in_transaction

from gateway.calls import Personalization, record_personalizations

log = logging.getLogger("gateway.plugins.elevenlabs")

BATCH = 200
LINGER_SECONDS = 0.05
ATTEMPTS = 3
PAUSE_SECONDS = 0.5
STOP_SECONDS = 8.0  # within Hypercorn's graceful timeout (10 s in gateway serve)


class PersonalizationWriter:
    """One per app (process). :meth:`submit` never waits."""

    def __init__(self, clock: Any, *, max_pending: int = 50_000) -> None:
        self.clock = clock
        self.max_pending = max_pending
        self._queue: deque[Personalization] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._writing: list[Personalization] = []  # the batch being written
        self.written = 0
        self.lost = 0
        self.pause_seconds = PAUSE_SECONDS
        self.stop_seconds = STOP_SECONDS
        self.linger_seconds = LINGER_SECONDS

    def submit(self, record: Personalization) -> None:
        if len(self._queue) >= self.max_pending:
            # Only when the database has been failing for a long while: say so.
            self.lost += 1
            log.error(
                "personalization of call %s not stored: %d records already waiting",
                record.call_sid,
                len(self._queue),
            )
            return
        self._queue.append(record)
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued (for at most ``stop_seconds``: the server is being
        stopped, and a database that is down would hold it forever), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), self.stop_seconds)
        except TimeoutError:
            left = self._writing + list(self._queue)
            self.lost += len(left)
            log.error(
                "personalization of %d calls not stored at shutdown: %s",
                len(left),
                ", ".join(r.call_sid for r in left[:20]) + (" ..." if len(left) > 20 else ""),
            )
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (or given up on)."""
        if self._task is not None:
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Let a burst gather: one transaction for the answers of the next few
            # milliseconds costs less than one per answer (the answers are already sent).
            if len(self._queue) < BATCH:
                await asyncio.sleep(self.linger_seconds)
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._writing = batch
                await self._write(batch)
                self._writing = []
            self._idle.set()

    async def _write(self, batch: list[Personalization]) -> None:
        try:
            await self._transaction(batch)
            self.written += len(batch)
            return
        except Exception as exc:  # the database, or one bad record: isolate it
            log.warning("personalization batch of %d not stored (%s)", len(batch), exc)
        for record in batch:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await self._transaction([record])
                    self.written += 1
                    break
                except Exception as exc:
                    if attempt == ATTEMPTS:
                        self.lost += 1
                        log.error(
                            "personalization of call %s not stored after %d attempts (%s)",
                            record.call_sid,
                            ATTEMPTS,
                            type(exc).__name__,
                        )
                    else:
                        await self.clock.sleep(self.pause_seconds * attempt)

    async def _transaction(self, batch: list[Personalization]) -> None:
        now = self.clock.now()
        async with in_transaction() as conn:
            await record_personalizations(batch, using_db=conn, now=now)
