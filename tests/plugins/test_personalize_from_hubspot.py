"""The whole caller lookup as a sales team sees it: the team connects HubSpot over
OAuth, ElevenLabs asks ``/api/webhooks/elevenlabs/personalize`` while the phone rings,
and the agent gets the HubSpot contact's name and company, within the deadline; a
HubSpot that is too slow is cut off and the team's defaults are answered instead."""

from __future__ import annotations

import time
from typing import Any

from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.testing import run_connect, seed_admin
from tests.support.fake_elevenlabs import AGENT, SECRET
from tests.support.fake_hubspot import FakeHubSpot
from tests.support.fake_hubspot import plugin_settings as hubspot_settings

URL = "/api/webhooks/elevenlabs/personalize"
PSECRET = "psec-plugin-0123456789"
NUMBER = "+14155550100"
CALLER = "+14155550199"
DEADLINE = 0.5

TEAM_SETTINGS = {
    "dynamic_variables": {"customer_name": "there", "company": "your company"},
    "contact_variables": {"customer_name": "name", "company": "company"},
}


async def gateway_with_hubspot(make_app: Any, hubspot: FakeHubSpot) -> Any:
    return await make_app(
        plugins={
            "hubspot": hubspot_settings(hubspot, search_lag_seconds=0),
            "elevenlabs": {
                "webhook_secret": SECRET,
                "personalize_secret": PSECRET,
                "lookup_deadline_seconds": DEADLINE,
                "lookup_cache_seconds": 0,
            },
        }
    )


async def connected_team(app: Any) -> Any:
    """A team admin connects HubSpot and saves the agent's variables; the team owns the
    number and the agent."""
    admin = await seed_admin()
    client = app.test_client()
    done = await run_connect(client, admin, "hubspot")
    assert done.status_code == 200, await done.get_data(as_text=True)
    saved = await client.put(
        f"/api/teams/{admin.team.id}/settings/elevenlabs", json=TEAM_SETTINGS, headers=admin.headers
    )
    assert saved.status_code == 200, await saved.get_data(as_text=True)
    await PhoneNumber.create(team=admin.team, number=NUMBER)
    await VoiceAgent.create(team=admin.team, agent_id=AGENT)
    return admin


async def ring(app: Any) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    response = await app.test_client().post(
        URL,
        json={"caller_id": CALLER, "agent_id": AGENT, "called_number": NUMBER, "call_sid": "CA1"},
        headers={"X-Webhook-Secret": PSECRET},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, await response.get_data(as_text=True)
    return elapsed, await response.get_json()


async def test_the_agent_greets_a_hubspot_contact_by_name(make_app):
    async with FakeHubSpot() as hubspot:
        app = await gateway_with_hubspot(make_app, hubspot)
        await connected_team(app)
        hubspot.add_contact(
            firstname="Ada", lastname="Lovelace", phone="(415) 555-0199", company="Engines Inc"
        )
        elapsed, answer = await ring(app)
        assert answer["dynamic_variables"]["customer_name"] == "Ada Lovelace"
        assert answer["dynamic_variables"]["company"] == "Engines Inc"
        assert elapsed < DEADLINE + 0.5  # the route's own budget, with slack for a busy CI
        (search,) = hubspot.requests_to("/crm/v3/objects/contacts/search")
        assert search["json"]["filterGroups"][0]["filters"][0]["value"] == CALLER


async def test_a_slow_hubspot_is_cut_off_and_the_defaults_are_answered(make_app):
    async with FakeHubSpot() as hubspot:
        app = await gateway_with_hubspot(make_app, hubspot)
        await connected_team(app)
        hubspot.add_contact(firstname="Ada", phone=CALLER)
        hubspot.search_delay = 3.0
        elapsed, answer = await ring(app)
        variables = answer["dynamic_variables"]
        assert (variables["customer_name"], variables["company"]) == ("there", "your company")
        assert elapsed < 3.0 - 1.0  # answered long before HubSpot would have
