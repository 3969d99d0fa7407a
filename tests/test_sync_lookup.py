"""The caller lookup through the team's connected CRMs: the core ``lookup_contact``
implementation, called the way the personalization path calls it
(gateway.contacts.lookup_contact, under its deadline)."""

from __future__ import annotations

import asyncio
import time

from gateway.contacts import lookup_contact
from gateway.testing import seed_admin
from tests.support.crm_plugin import NAME
from tests.support.fake_crm import FakeCrm
from tests.support.sync_helpers import CALLER
from tests.test_sync_engine import connected, crm_app


async def test_hook_lookup_contact_answers_from_the_connected_crm(make_app):
    async with FakeCrm() as crm:
        app = await crm_app(make_app, crm)
        admin = await connected(app)
        contact_id = crm.add_contact("Ada Lovelace", CALLER, "Analytical Engines")
        async with app.app_context():
            started = time.monotonic()
            found = await lookup_contact(app, admin.team, CALLER, deadline=2.0)
            assert time.monotonic() - started < 2.0
            assert found == {
                "name": "Ada Lovelace",
                "company": "Analytical Engines",
                "phone": CALLER,
                "id": contact_id,
                "source": NAME,
            }
            assert await lookup_contact(app, admin.team, "+14155550000") is None
        assert [r["query"] for r in crm.requests] == [{"phone": CALLER}, {"phone": "+14155550000"}]


async def test_a_team_without_the_crm_is_not_looked_up(make_app):
    async with FakeCrm() as crm:
        app = await crm_app(make_app, crm)
        other = await seed_admin("other@example.com")
        crm.add_contact("Ada", CALLER)
        async with app.app_context():
            assert await lookup_contact(app, other.team, CALLER) is None
        assert crm.requests == []


async def test_a_slow_crm_is_cut_off_at_the_deadline(make_app):
    async with FakeCrm() as crm:
        app = await crm_app(make_app, crm)
        admin = await connected(app)
        crm.add_contact("Ada", CALLER)
        crm.search_delay = 0.6
        async with app.app_context():
            started = time.monotonic()
            assert await lookup_contact(app, admin.team, CALLER, deadline=0.2) is None
            assert time.monotonic() - started < 1.0
        # The cancelled lookup left nothing running behind (its request was dropped).
        pending = [t for t in asyncio.all_tasks() if "lookup" in repr(t.get_coro())]
        assert pending == []
