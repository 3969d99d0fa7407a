"""The ``lookup_contact`` hook: first answer wins, under one deadline."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gateway import hookimpl
from gateway.contacts import MISSED, ContactAnswer, ContactCache, find_contact, lookup_contact


class Nobody:
    @hookimpl
    def lookup_contact(self, team, phone):
        return None


class SlowCrm:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    @hookimpl(tryfirst=True)
    async def lookup_contact(self, phone):
        await self.release.wait()  # never released: stands for a CRM that hangs
        return {"name": "too late"}


class Crm:
    @hookimpl
    async def lookup_contact(self, team, phone, config):
        return {"name": "Ada Lovelace", "phone": phone} if phone == "+15550001111" else None


class Broken:
    @hookimpl(trylast=True)
    def lookup_contact(self, phone):
        raise RuntimeError("crm down")


async def test_first_answer_wins_and_none_is_skipped(make_app):
    app = await make_app(
        plugins={"crm": {}, "nobody": {}, "broken": {}},
        extra_plugins=[("crm", Crm()), ("nobody", Nobody()), ("broken", Broken())],
    )
    async with app.app_context():
        assert await lookup_contact(app, None, "+15550001111") == {
            "name": "Ada Lovelace",
            "phone": "+15550001111",
        }
        assert await lookup_contact(app, None, "+15559999999") is None


async def test_a_hanging_plugin_is_skipped_at_the_deadline(make_app):
    slow = SlowCrm()
    app = await make_app(
        plugins={"crm": {}, "slow": {}}, extra_plugins=[("crm", Crm()), ("slow", slow)]
    )
    result = await lookup_contact(app, None, "+15550001111", deadline=0.05)
    # The slow plugin runs first (tryfirst) and misses; the deadline is shared, so nothing
    # is left for the next one either: the call goes on without a contact.
    assert result is None
    assert not slow.release.is_set()


# -- which plugin answered, and the cache ------------------------------------------------


class Counting:
    """Knows one number; counts the lookups, optionally waiting to be released."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls: list[str] = []
        self.gate = gate

    @hookimpl
    async def lookup_contact(self, team, phone):
        self.calls.append(phone)
        if self.gate is not None:
            await self.gate.wait()
        return {"name": "Ada"} if phone == "+15550001111" else None


async def counting_app(make_app, plugin):
    return await make_app(plugins={"crm": {}}, extra_plugins=[("crm", plugin)])


async def test_find_contact_says_which_plugin_answered(make_app):
    app = await make_app(
        plugins={"crm": {}, "nobody": {}}, extra_plugins=[("crm", Crm()), ("nobody", Nobody())]
    )
    assert await find_contact(app, None, "+15550001111") == ContactAnswer(
        {"name": "Ada Lovelace", "phone": "+15550001111"}, "crm", complete=True
    )
    assert await find_contact(app, None, "+15559999999") == ContactAnswer(None, None, True)


async def test_a_miss_or_a_failure_is_not_a_complete_answer(make_app):
    app = await make_app(
        plugins={"slow": {}, "broken": {}},
        extra_plugins=[("slow", SlowCrm()), ("broken", Broken())],
    )
    assert await find_contact(app, None, "+15550001111", deadline=0.05) == MISSED
    app = await make_app(plugins={"broken": {}}, extra_plugins=[("broken", Broken())])
    assert (await find_contact(app, None, "+1555")).complete is False


async def test_the_cache_keeps_answers_and_negatives_until_they_expire(make_app, clock):
    crm = Counting()
    app = await counting_app(make_app, crm)
    cache = ContactCache(app, ttl_seconds=60)
    team = SimpleNamespace(id=1)
    for _ in range(2):
        answer, _ = await cache.lookup(team, "+15550001111", deadline=1)
        assert answer.contact == {"name": "Ada"} and answer.answered_by == "crm"
        nobody, _ = await cache.lookup(team, "+15559999999", deadline=1)
        assert nobody.contact is None and nobody.complete
    assert crm.calls == ["+15550001111", "+15559999999"]  # once each: negatives cached too
    assert (await cache.lookup(SimpleNamespace(id=2), "+15550001111", deadline=1))[1] is False
    clock.advance(59)
    assert (await cache.lookup(team, "+15559999999", deadline=1))[1] is True
    clock.advance(1)
    assert (await cache.lookup(team, "+15559999999", deadline=1))[1] is False
    assert crm.calls.count("+15559999999") == 2


async def test_concurrent_lookups_of_one_key_share_one_call(make_app):
    gate = asyncio.Event()
    crm = Counting(gate)
    app = await counting_app(make_app, crm)
    cache = ContactCache(app, ttl_seconds=60)
    waiting = [
        asyncio.create_task(cache.lookup(None, "+15550001111", deadline=5)) for _ in range(5)
    ]
    await asyncio.sleep(0.01)
    gate.set()
    answers = await asyncio.gather(*waiting)
    assert [a.contact for a, _ in answers] == [{"name": "Ada"}] * 5
    assert crm.calls == ["+15550001111"] and cache.lookups == 1


async def test_a_missed_deadline_is_not_cached_and_the_cache_is_bounded(make_app):
    gate = asyncio.Event()
    app = await counting_app(make_app, Counting(gate))
    cache = ContactCache(app, ttl_seconds=60, max_entries=2)
    assert await cache.lookup(None, "+15550001111", deadline=0.05) == (MISSED, False)
    assert cache.cached(None, "+15550001111") is None
    gate.set()
    for phone in ("+1", "+2", "+3"):
        await cache.lookup(None, phone, deadline=1)
    assert cache.cached(None, "+1") is None and cache.cached(None, "+3") is not None
