"""The one clock. Code asks ``app.extensions["gateway"].clock`` (or the clock it was
given) for the time; tests swap in :class:`FrozenClock` and move it instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

# A real sleep until a wall-clock time is taken in slices of at most this long, so a
# wall clock that is stepped (NTP, a suspended VM) is noticed within a minute.
_SLICE_SECONDS = 60.0


class Clock:
    """Wall-clock time in UTC, plus a monotonic counter for durations."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when`` (at once if it already is)."""
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _SLICE_SECONDS))


class FrozenClock(Clock):
    """A clock that only moves when told to. ``sleep`` advances it instantly;
    ``sleep_until`` waits until the test moves the clock far enough."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._mono = 0.0
        self._waiters: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        delta = timedelta(seconds=seconds, **kwargs)
        self._now += delta
        self._mono += delta.total_seconds()
        self._wake()
        return self._now

    def set(self, when: datetime) -> None:
        self._mono += (when - self._now).total_seconds()
        self._now = when
        self._wake()

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (when, future)
        self._waiters.append(entry)
        try:
            await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _wake(self) -> None:
        for when, future in list(self._waiters):
            if when <= self._now and not future.done():
                future.set_result(None)
