"""Acme CRM through the gateway, as a team uses it: an admin connects Acme over OAuth,
a call is analyzed, the call shows up once on the contact in Acme; the team's settings
decide what is logged. Everything over real HTTP on loopback (tests/fake_acme_api.py)
with the fixtures of gateway.testing (make_app, any_app, clock, run_jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_acme_api import FakeAcme
from gateway import get_gateway
from gateway.sync import lookup_contact
from gateway.testing import (
    analyzed_call,
    assert_plugin_api_only,
    connected_admin,
    integration_status,
)
from gateway.testing.calls import CALLER

import acme_crm

NAME = acme_crm.NAME


@pytest.fixture
async def acme() -> AsyncIterator[FakeAcme]:
    async with FakeAcme() as server:
        yield server


def table(server: FakeAcme) -> dict[str, Any]:
    """The operator's [plugins.acme_crm], pointed at the fake."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "auth_url": server.url,
        "api_url": server.url,
    }


async def connected_app(make_app: Any, acme: FakeAcme, db: str = "sqlite") -> tuple[Any, Any]:
    app = await make_app(db=db, plugins={NAME: table(acme)})
    return app, await connected_admin(app, NAME)


def test_the_plugin_imports_only_the_public_api() -> None:
    assert_plugin_api_only(Path(acme_crm.__file__).parent, own=NAME)


async def test_an_admin_connects_acme(make_app, acme) -> None:
    app, admin = await connected_app(make_app, acme)
    status = await integration_status(app.test_client(), admin, NAME)
    assert status["status"] == "connected"
    assert status["account"] == {"id": "ws_42", "label": "owner@acme.example"}
    assert acme.code_calls == 1


async def test_an_analyzed_call_is_logged_once_on_the_contact(make_app, acme, run_jobs, db_kind):
    app, admin = await connected_app(make_app, acme, db=db_kind)
    contact = acme.add_contact("Ada Lovelace", CALLER, "Analytical Engines")
    await analyzed_call(app, admin.team.id, summary="Wants a demo on Friday.")
    await analyzed_call(app, admin.team.id, summary="Wants a demo on Friday.")  # redelivered
    await run_jobs(app)
    (call,) = acme.calls.values()
    assert call["contact_id"] == contact
    assert call["note"] == "Wants a demo on Friday."
    assert call["type"] == "AI call"
    assert call["outcome"] == "success"
    assert call["external_ref"]  # the gateway's idempotency marker


async def test_the_team_decides_what_is_logged(make_app, acme, run_jobs):
    app, admin = await connected_app(make_app, acme)
    client = app.test_client()
    url = f"/api/teams/{admin.team.id}/settings/{NAME}"
    resp = await client.patch(url, json={"include_summary": False}, headers=admin.headers)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    await analyzed_call(app, admin.team.id, "conv_1")
    await run_jobs(app)
    (call,) = acme.calls.values()
    assert call["note"] == ""

    resp = await client.patch(url, json={"log_calls": False}, headers=admin.headers)
    assert resp.status_code == 200
    await analyzed_call(app, admin.team.id, "conv_2")
    await run_jobs(app)
    assert len(acme.calls) == 1  # skipped, as the team asked


async def test_a_429_waits_for_retry_after_on_the_gateway_clock(make_app, acme, run_jobs, clock):
    app, admin = await connected_app(make_app, acme)
    acme.throttle_next = 1  # Acme answers the first request (the contact search) 429
    await analyzed_call(app, admin.team.id)
    await run_jobs(app)
    assert acme.calls == {}  # rescheduled after Retry-After (30 s), not retried now
    clock.advance(31)
    await run_jobs(app)
    assert len(acme.calls) == 1


async def test_the_caller_lookup_finds_the_contact(make_app, acme):
    app, admin = await connected_app(make_app, acme)
    acme.add_contact("Ada Lovelace", CALLER, "Analytical Engines")
    async with app.app_context():  # as during a request: the lookup runs in one
        found = await lookup_contact(app, admin.team, CALLER, 5.0)
    assert found is not None
    assert found["name"] == "Ada Lovelace" and found["source"] == NAME


async def test_installed_but_not_configured_registers_nothing(make_app):
    app = await make_app()
    gw = get_gateway(app)
    assert NAME in gw.pm.gateway_info  # installed and enabled...
    assert NAME not in gw.registry("register_crms")  # ...but out of the way
    assert NAME not in gw.registry("register_oauth_providers")
