"""HubSpot as a CRM against the loopback HubSpot (tests/support/fake_hubspot_crm.py): the
exact requests the gateway sends (contact search, Call engagement with its association,
marker search), the caller lookup, contact creation by team setting, HubSpot's 429,
401, 5xx and validation errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.contacts import lookup_contact
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.sync.models import Effect
from gateway.testing import connected_admin
from tests.support.fake_hubspot import FakeHubSpot, plugin_settings
from tests.support.sync_helpers import AGENT_NUMBER, CALLER, SECRET_WORDS, analyzed_call

NAME = "hubspot"
HANDLER = "hubspot.log_call"
SEARCH = "/crm/v3/objects/contacts/search"
CALLS = "/crm/v3/objects/calls"


@pytest.fixture
async def hubspot():
    async with FakeHubSpot() as srv:
        yield srv


async def hub_app(make_app: Any, server: FakeHubSpot, db: str = "sqlite", **extra: Any) -> Any:
    extra.setdefault("search_lag_seconds", 0)
    return await make_app(db=db, plugins={NAME: plugin_settings(server, **extra)})


async def connected(app: Any, **team_settings: Any) -> Any:
    return await connected_admin(app, NAME, settings=team_settings)


async def test_an_analyzed_call_becomes_one_call_engagement(make_app, hubspot, db_kind, caplog):
    caplog.set_level(logging.DEBUG)
    app = await hub_app(make_app, hubspot, db=db_kind)
    admin = await connected(app)
    ada = hubspot.add_contact(
        firstname="Ada", lastname="Lovelace", phone="(415) 555-0199", company="Engines Inc"
    )
    hubspot.add_contact(firstname="Other", phone="+1 212 555 0199")  # same digits elsewhere
    await analyzed_call(app, admin.team.id, summary="Wants <pricing> & a demo")
    await run_pending_jobs(app)

    (search,) = hubspot.requests_to(SEARCH)
    assert search["json"]["filterGroups"] == [
        {"filters": [{"propertyName": "phone", "operator": "EQ", "value": CALLER}]},
        {"filters": [{"propertyName": "mobilephone", "operator": "EQ", "value": CALLER}]},
        {
            "filters": [
                {
                    "propertyName": "hs_searchable_calculated_phone_number",
                    "operator": "EQ",
                    "value": "4155550199",
                }
            ]
        },
        {
            "filters": [
                {
                    "propertyName": "hs_searchable_calculated_mobile_number",
                    "operator": "EQ",
                    "value": "4155550199",
                }
            ]
        },
    ]
    (create,) = hubspot.requests_to(CALLS)
    props = create["json"]["properties"]
    marker = (await Effect.get(action="log_call")).marker
    assert props == {
        "hs_timestamp": "2026-01-01T12:00:00Z",
        "hs_call_title": "AI agent call (inbound)",
        "hs_call_body": "<p><b>Summary</b><br>Wants &lt;pricing&gt; &amp; a demo</p>"
        "<p><b>Transcript (excerpt)</b><br>Agent: Hello, Acme here.<br>"
        f"User: {SECRET_WORDS}</p><p>Gateway ref: {marker}</p>",
        "hs_call_direction": "INBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_duration": 62000,
        "hs_call_from_number": CALLER,
        "hs_call_to_number": AGENT_NUMBER,
    }
    assert create["json"]["associations"] == [
        {
            "to": {"id": ada},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]
    (call_id,) = hubspot.engagements
    assert hubspot.associations == [(call_id, ada, 194)]
    row = await Effect.get(action="log_call")
    assert row.status == "done" and row.provider_id == call_id
    assert row.url == f"{hubspot.url}/contacts/24681357/record/0-48/{call_id}"
    assert (await Job.get(handler=HANDLER)).status == "succeeded"
    # No token, no transcript and no summary above DEBUG.
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    tokens = {r["bearer"] for r in hubspot.api_requests} | set(hubspot.live_refresh_tokens())
    assert "hubspot: logged the call" in text
    assert SECRET_WORDS not in text and "pricing" not in text
    assert not [t for t in tokens if t and t in text]


async def test_caller_lookup_gives_name_company_owner_and_last_activity(make_app, hubspot):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    ada = hubspot.add_contact(
        firstname="Ada",
        lastname="Lovelace",
        email="ada@engines.example",
        mobilephone="+14155550199",
        company="Engines Inc",
        hubspot_owner_id="7001",
        notes_last_updated="2025-12-30T10:00:00Z",
    )
    async with app.app_context():
        found = await lookup_contact(app, admin.team, CALLER, deadline=2.0)
    assert found == {
        "name": "Ada Lovelace",
        "first_name": "Ada",
        "email": "ada@engines.example",
        "phone": CALLER,
        "company": "Engines Inc",
        "owner": "7001",
        "last_activity": "2025-12-30T10:00:00Z",
        "url": f"{hubspot.url}/contacts/24681357/record/0-1/{ada}",
        "id": ada,
        "source": NAME,
    }


async def test_unknown_callers_become_contacts_only_when_the_team_says_so(make_app, hubspot):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    await analyzed_call(app, admin.team.id, "conv_a")
    await run_pending_jobs(app)
    assert hubspot.contacts == {}
    (call,) = hubspot.requests_to(CALLS)
    assert "associations" not in call["json"]  # logged without a contact

    client = app.test_client()
    resp = await client.patch(
        f"/api/teams/{admin.team.id}/settings/{NAME}",
        headers=admin.headers,
        json={"create_contacts": True},
    )
    assert resp.status_code == 200
    await analyzed_call(app, admin.team.id, "conv_b")
    await run_pending_jobs(app)
    (contact,) = hubspot.contacts.values()
    assert contact["properties"]["phone"] == CALLER
    assert hubspot.requests_to("/crm/v3/objects/contacts")[0]["json"] == {
        "properties": {"phone": CALLER}
    }
    assert hubspot.requests_to(CALLS)[1]["json"]["associations"][0]["to"]["id"] == contact["id"]


async def test_a_crash_after_hubspot_created_the_call_is_reconciled_by_marker(
    make_app, hubspot, clock
):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    await analyzed_call(app, admin.team.id)
    hubspot.fail_after_create = True
    await run_pending_jobs(app)
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(hubspot.engagements) == 1 and len(hubspot.requests_to(CALLS)) == 1
    (marker_search,) = hubspot.requests_to("/crm/v3/objects/calls/search")
    marker = (await Effect.get(action="log_call")).marker
    assert marker_search["json"]["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "hs_call_body", "operator": "CONTAINS_TOKEN", "value": marker}
            ]
        }
    ]
    assert (await Effect.get(action="log_call")).provider_id == next(iter(hubspot.engagements))


async def test_search_lag_is_waited_out_before_not_found_is_trusted(make_app, hubspot, clock):
    app = await hub_app(make_app, hubspot, search_lag_seconds=30)
    admin = await connected(app)
    await analyzed_call(app, admin.team.id)
    hubspot.fail_next_api(200, {"total": 0, "results": []})  # the contact search
    hubspot.fail_next_api(502)  # the create fails before HubSpot stored anything
    await run_pending_jobs(app)
    clock.advance(5)  # backoff passed, the search lag not yet
    await run_pending_jobs(app)
    assert hubspot.requests_to("/crm/v3/objects/calls/search") == []
    job = await Job.get(handler=HANDLER)
    assert job.status == "pending" and job.attempts == 1
    clock.advance(30)
    await run_pending_jobs(app)
    assert len(hubspot.requests_to("/crm/v3/objects/calls/search")) == 1
    assert len(hubspot.engagements) == 1


async def test_hubspot_429_reschedules_after_retry_after(make_app, hubspot, clock):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    hubspot.fail_next_api(
        429,
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        {"Retry-After": "7"},
    )
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 0)
    assert round((job.run_at - clock.now()).total_seconds()) == 7
    clock.advance(7)
    await run_pending_jobs(app)
    assert len(hubspot.engagements) == 1


async def test_hubspot_401_refreshes_once_and_retries(make_app, hubspot):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    hubspot.expire_access_tokens()  # HubSpot no longer takes the token it issued
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert hubspot.refresh_calls == 1
    searches = hubspot.requests_to(SEARCH)
    assert len(searches) == 2 and searches[0]["bearer"] != searches[1]["bearer"]
    assert len(hubspot.engagements) == 1


async def test_hubspot_5xx_retries_with_backoff(make_app, hubspot, clock):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    hubspot.fail_next_api(503)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "pending" and job.attempts == 1
    assert "hubspot answered HTTP 503" in job.last_error
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(hubspot.engagements) == 1


async def test_a_validation_error_is_dead_with_hubspots_reason(make_app, hubspot):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    hubspot.fail_next_api(200, {"total": 0, "results": []})
    hubspot.fail_next_api(
        400,
        {
            "status": "error",
            "message": "Property values were not valid",
            "category": "VALIDATION_ERROR",
        },
    )
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead"
    assert "hubspot refused POST /crm/v3/objects/calls: HTTP 400 VALIDATION_ERROR" in job.last_error
    assert (await Effect.get(action="log_call")).status == "failed"


async def test_a_team_that_turned_logging_off_is_skipped(make_app, hubspot):
    app = await hub_app(make_app, hubspot)
    admin = await connected(app, log_calls=False)
    hubspot.add_contact(firstname="Ada", phone=CALLER)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert hubspot.engagements == {}
    row = await Effect.get(action="log_call")
    assert row.status == "skipped" and "do not log calls" in row.detail
