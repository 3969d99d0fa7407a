"""The personalization's team cache on its own: how reads are shared, renewed, bounded
and stopped (the route's behaviour through HTTP is in test_elevenlabs_personalize.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.clock import FrozenClock
from plugins.elevenlabs.team_cache import TeamCache

KEY = ("+14155550100", "agent_1")


class Database:
    """What the cache reads: answers ``value``, fails with ``error``, or waits for
    ``release``; every read counted."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.value = "team v1"
        self.error: Exception | None = None
        self.release: asyncio.Event | None = None
        self.takes = 0.0  # gateway-clock seconds a read takes
        self.reads = 0

    async def read(self, key: tuple[str, str]) -> str:
        self.reads += 1
        if self.release is not None:
            await self.release.wait()
        self.clock.advance(self.takes)
        if self.error is not None:
            raise self.error
        return self.value


def cache_for(db: Database, ttl: float = 5.0, read_timeout: float = 1.0) -> TeamCache[str]:
    return TeamCache(
        db.read, clock=db.clock, ttl_seconds=ttl, max_entries=100, read_timeout=read_timeout
    )


async def test_a_failing_renewal_is_tried_once_and_the_entry_serves_until_it_expires(caplog):
    clock = FrozenClock()
    db = Database(clock)
    cache = cache_for(db)
    assert await cache.get(KEY, 1) == "team v1"
    db.error = OSError("database is locked")
    clock.advance(3)  # second half of the entry's life
    for _ in range(50):
        assert await cache.get(KEY, 1) == "team v1"
        await cache.settle()
    assert db.reads == 2  # the first read and one renewal, not one per call
    assert caplog.text.count("reading the team failed: OSError") == 1
    clock.advance(2)  # expired: the next call reads, and waits for it
    with pytest.raises(OSError):
        await cache.get(KEY, 1)


async def test_an_entry_is_never_older_than_the_ttl_counted_from_its_reads_start():
    clock = FrozenClock()
    db = Database(clock)
    db.takes = 2.0  # a slow read: what it found is as old as the moment it started
    cache = cache_for(db, read_timeout=10)
    assert await cache.get(KEY, 10) == "team v1"  # read from t=0 to t=2
    db.takes, db.value = 0.0, "team v2"
    clock.advance(3.5)  # t=5.5: 5.5 s after the read started, 3.5 s after it ended
    assert await cache.get(KEY, 1) == "team v2"
    assert db.reads == 2


async def test_a_read_the_database_never_answers_is_given_up_at_the_read_timeout():
    clock = FrozenClock()
    db = Database(clock)
    db.release = asyncio.Event()  # never set
    cache = cache_for(db, read_timeout=0.05)
    with pytest.raises(TimeoutError):
        await cache.get(KEY, 1)  # the call would wait a second; the read stops first
    db.release = None
    assert await cache.get(KEY, 1) == "team v1"  # the next call reads again
    assert db.reads == 2


async def test_a_call_giving_up_leaves_the_read_to_the_others():
    clock = FrozenClock()
    db = Database(clock)
    db.release = asyncio.Event()
    cache = cache_for(db)
    patient = asyncio.create_task(cache.get(KEY, 1))
    with pytest.raises(TimeoutError):
        await cache.get(KEY, 0.01)
    db.release.set()
    assert await patient == "team v1"
    assert db.reads == 1


async def test_stopping_while_a_read_has_not_even_started_ends_and_fails_its_calls():
    clock = FrozenClock()
    db = Database(clock)
    cache = cache_for(db)
    call = asyncio.create_task(cache.get(KEY, 1))
    await asyncio.sleep(0)  # the call started the read; the read has not run yet
    async with asyncio.timeout(1):  # (a read cancelled before it ran once hung here)
        await cache.stop()
    assert db.reads == 0
    with pytest.raises(RuntimeError, match="stopping"):
        await call
    with pytest.raises(RuntimeError, match="stopping"):
        await cache.get(("+14155550999", "agent_2"), 1)


async def test_stopping_during_a_read_fails_its_calls_instead_of_cancelling_them():
    clock = FrozenClock()
    db = Database(clock)
    db.release = asyncio.Event()  # the database does not answer
    cache = cache_for(db)
    call = asyncio.create_task(cache.get(KEY, 1))
    while db.reads == 0:
        await asyncio.sleep(0)
    await cache.stop()
    with pytest.raises(RuntimeError, match="stopping"):
        await call  # a call the route answers with the defaults (or 503), not cancelled


async def test_a_database_errors_text_is_not_logged(caplog):
    caplog.set_level(logging.WARNING)
    clock = FrozenClock()
    db = Database(clock)
    db.error = OSError("near 'SELECT': syntax error; values +14155550100")
    cache = cache_for(db)
    with pytest.raises(OSError):
        await cache.get(KEY, 1)
    assert "reading the team failed: OSError" in caplog.text
    assert "+14155550100" not in caplog.text
