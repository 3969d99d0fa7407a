"""The team of a (called number, agent) and its settings, kept for ``team_cache_seconds``
so that a warm personalization call reads no database at all.

Reading it is one statement, but on SQLite it waits for the one connection, which the
record writer holds for its whole batch under load. So no call should wait for a read
another call could share, or that could have happened earlier:

- **One read per key at a time.** Calls that need the same team while it is being read
  wait for that read, each only up to its own deadline; a call giving up leaves the read
  to the others.
- **Read again before it expires.** A call in the second half of an entry's life starts
  the next read in the background and is answered from the entry, so under steady
  traffic the entry is renewed before anyone finds it expired. One such attempt per
  entry: if it fails, the entry serves until it expires (a failing database is not
  asked again by every call).
- **Never older than ``ttl_seconds``**, counted from when its read started.

Every read is bounded by ``read_timeout`` (the call's whole budget,
``lookup_deadline_seconds``), so a stuck database holds at most one read per key, as
many as before the reads were shared. A failed read is logged once, here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.clock import Clock
from gateway.team_settings import TeamSettingsInvalid

log = logging.getLogger("gateway.plugins.elevenlabs")

Key = tuple[str, str]
T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    expires: float
    renew_from: float  # a call from then on starts the next read (inf: no more tries)
    value: T


class TeamCache(Generic[T]):
    """``get(key, wait)``: the cached value, else the (shared) read's, within ``wait``."""

    def __init__(
        self,
        read: Callable[[Key], Awaitable[T]],
        *,
        clock: Clock,
        ttl_seconds: float,
        max_entries: int,
        read_timeout: float,
    ) -> None:
        self._read_value = read
        self.clock = clock
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.read_timeout = read_timeout
        self._entries: OrderedDict[Key, _Entry[T]] = OrderedDict()
        self._reading: dict[Key, asyncio.Task[T]] = {}
        self._stopping = False
        self.reads = 0  # reads started (tests, metrics)

    async def get(self, key: Key, wait: float) -> T:
        """Raises what the read raised, or ``TimeoutError`` after ``wait`` seconds."""
        now = self.clock.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            if now >= entry.renew_from and key not in self._reading and not self._stopping:
                entry.renew_from = float("inf")  # one try per entry
                self._start(key)
            return entry.value
        task = self._reading.get(key) or self._start(key)
        try:
            # shield: a call giving up at its deadline leaves the read to the others.
            return await asyncio.wait_for(asyncio.shield(task), max(wait, 0))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                raise RuntimeError("the read was cancelled: stopping") from None
            raise  # this call itself was cancelled

    def _start(self, key: Key) -> asyncio.Task[T]:
        if self._stopping:
            raise RuntimeError("the team cache is stopping")
        self.reads += 1
        task = asyncio.get_running_loop().create_task(self._read(key))
        task.add_done_callback(lambda done: self._finished(key, done))
        self._reading[key] = task
        return task

    async def _read(self, key: Key) -> T:
        started = self.clock.monotonic()
        value = await asyncio.wait_for(self._read_value(key), self.read_timeout)
        if self.ttl > 0 and not self._stopping:
            self._entries[key] = _Entry(started + self.ttl, started + self.ttl / 2, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def _finished(self, key: Key, task: asyncio.Task[T]) -> None:
        # In a done callback, not in the read: a task cancelled before it started never
        # runs its own ``finally``.
        if self._reading.get(key) is task:
            del self._reading[key]
        if not task.cancelled() and task.exception() is not None:
            log.warning("personalize: reading the team failed: %s", _described(task.exception()))

    async def settle(self) -> None:
        """Wait for the reads under way."""
        while pending := [t for t in self._reading.values() if not t.done()]:
            await asyncio.wait(pending)

    async def stop(self) -> None:
        """No new reads; the ones under way are cancelled (serving has stopped, so no
        call waits for them)."""
        self._stopping = True
        for task in list(self._reading.values()):
            task.cancel()
        await self.settle()


def _described(exc: Any) -> str:
    # A database error's text may quote the statement's values; its type says enough.
    # Settings errors are the gateway's own and name the bad field.
    return str(exc) if isinstance(exc, TeamSettingsInvalid) else type(exc).__name__
