"""The ``lookup_contact`` hook: first answer wins, under one deadline."""

from __future__ import annotations

import asyncio

from gateway import hookimpl
from gateway.contacts import lookup_contact


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
