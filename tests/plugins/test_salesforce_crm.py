"""Salesforce as a CRM against the loopback org (tests/support/fake_salesforce_crm.py): the
exact requests the gateway sends (SOSL over phone fields, the call Task, the SOQL marker
query), the caller lookup, exactly one Task across duplicates, retries and replays,
leads for new callers, the session refresh and a moved instance URL, the org's request
limit and Salesforce's validation errors."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from gateway.contacts import lookup_contact
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.oauth.models import OAuthConnection
from gateway.sync.models import Effect
from gateway.testing import connected_admin
from tests.support.fake_salesforce import FakeSalesforce, plugin_settings
from tests.support.sync_helpers import AGENT_NUMBER, CALLER, SECRET_WORDS, analyzed_call

NAME = "salesforce"
HANDLER = "salesforce.log_call"
DATA = "/services/data/v62.0"
SOSL = (
    "FIND {\\+14155550199 OR 4155550199} IN PHONE FIELDS RETURNING "
    "Contact(Id, Name, FirstName, Email, Phone, MobilePhone, Account.Name, Owner.Name, "
    "LastActivityDate), Lead(Id, Name, FirstName, Email, Phone, MobilePhone, Company, "
    "Owner.Name)"
)


@pytest.fixture
async def sf():
    async with FakeSalesforce() as srv:
        yield srv


async def sf_app(make_app: Any, server: FakeSalesforce, db: str = "sqlite", **extra: Any) -> Any:
    return await make_app(db=db, plugins={NAME: plugin_settings(server, **extra)})


async def connected(app: Any, **team_settings: Any) -> Any:
    return await connected_admin(app, NAME, body={"environment": "sandbox"}, settings=team_settings)


async def test_an_analyzed_call_becomes_one_call_task(make_app, sf, db_kind, caplog):
    caplog.set_level(logging.DEBUG)
    app = await sf_app(make_app, sf, db=db_kind)
    admin = await connected(app)
    ada = sf.add_contact(
        FirstName="Ada", LastName="Lovelace", Phone="(415) 555-0199", **{"Account.Name": "Engines"}
    )
    sf.add_lead(FirstName="Lead", LastName="Same", Phone="+14155550199", Company="X")
    sf.add_lead(FirstName="Other", LastName="Country", Phone="+44 4155 550199", Company="Y")
    await analyzed_call(app, admin.team.id, summary="Wants pricing & a demo")
    await run_pending_jobs(app)

    (search,) = sf.requests_to("GET", "/search/")
    assert search["path"] == f"{DATA}/search/" and search["query"] == {"q": SOSL}
    (create,) = sf.requests_to("POST", "/sobjects/Task")
    marker = (await Effect.get(action="log_call")).marker
    assert create["path"] == f"{DATA}/sobjects/Task"
    assert create["json"] == {
        "Subject": "AI agent call (inbound)",
        "TaskSubtype": "Call",
        "CallType": "Inbound",
        "CallDurationInSeconds": 62,
        "CallDisposition": "success",
        "CallObject": marker,
        "Status": "Completed",
        "ActivityDate": "2026-01-01",
        "Description": f"From {CALLER} to {AGENT_NUMBER}\n\nSummary:\nWants pricing & a demo\n\n"
        f"Transcript (excerpt):\nAgent: Hello, Acme here.\nUser: {SECRET_WORDS}",
        "WhoId": ada,  # the Contact, not the Lead with the same number
    }
    (task_id,) = sf.tasks
    row = await Effect.get(action="log_call")
    assert row.status == "done" and row.provider_id == task_id
    assert row.url == f"{sf.url}/lightning/r/Task/{task_id}/view"
    assert (await Job.get(handler=HANDLER)).status == "succeeded"
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    tokens = {r["bearer"] for r in sf.api_requests} | set(sf.live_refresh_tokens())
    assert "salesforce: logged the call" in text
    assert SECRET_WORDS not in text and "pricing" not in text
    assert not [t for t in tokens if t and t in text]


async def test_caller_lookup_answers_within_the_deadline_contact_before_lead(make_app, sf):
    app = await sf_app(make_app, sf)
    admin = await connected(app)
    lead = sf.add_lead(
        FirstName="Grace",
        LastName="Hopper",
        MobilePhone="415.555.0123",
        Company="Navy",
        Email="grace@navy.example",
    )
    async with app.app_context():
        found = await lookup_contact(app, admin.team, "+14155550123", deadline=2.0)
    assert found == {
        "name": "Grace Hopper",
        "first_name": "Grace",
        "email": "grace@navy.example",
        "phone": "+14155550123",
        "company": "Navy",
        "owner": "Ada Rep",
        "url": f"{sf.url}/lightning/r/Lead/{lead}/view",
        "record_type": "Lead",
        "id": lead,
        "source": NAME,
    }
    sf.add_lead(LastName="Lead", Phone="(415) 555-0199", Company="Same number")
    ada = sf.add_contact(
        FirstName="Ada",
        LastName="Lovelace",
        Phone="+1 (415) 555-0199",
        LastActivityDate="2025-12-30",
        **{"Account.Name": "Engines Inc"},
    )
    async with app.app_context():
        found = await lookup_contact(app, admin.team, CALLER, deadline=2.0)
    assert (found["id"], found["company"], found["last_activity"]) == (
        ada,
        "Engines Inc",
        "2025-12-30",
    )


async def test_a_duplicate_a_retry_and_a_replay_create_one_task(make_app, sf, clock, db_kind):
    app = await sf_app(make_app, sf, db=db_kind)
    admin = await connected(app)
    sf.add_contact(LastName="Lovelace", Phone=CALLER)
    emitted = await analyzed_call(app, admin.team.id)
    again = await analyzed_call(app, admin.team.id)  # the same delivery once more
    assert emitted.new and not again.new and again.jobs == 0

    sf.fail_after_create = True  # Salesforce stored the Task, the answer was lost (502)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts, len(sf.tasks)) == ("pending", 1, 1)
    clock.advance(3600)
    await run_pending_jobs(app)  # the retry finds the Task by its CallObject
    marker = (await Effect.get(action="log_call")).marker
    (query,) = sf.requests_to("GET", "/query/")
    assert query["query"] == {"q": f"SELECT Id FROM Task WHERE CallObject = '{marker}'"}

    replay = await app.test_client().post(
        f"/api/events/{emitted.event_id}/replay", headers=admin.headers
    )
    assert replay.status_code == 202
    await run_pending_jobs(app)
    assert len(sf.tasks) == 1 and len(sf.requests_to("POST", "/sobjects/Task")) == 1
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 2
    row = await Effect.get(action="log_call")
    assert (row.status, row.provider_id) == ("done", next(iter(sf.tasks)))
    assert next(iter(sf.tasks.values()))["CallObject"] == marker


async def test_a_401_refreshes_and_a_moved_instance_url_is_used_from_then_on(make_app, sf):
    moved = await sf.add_instance()
    # The new instance must be a host the token may be sent to: a configured origin here,
    # https://*.salesforce.com or *.force.com in production.
    app = await sf_app(make_app, sf, login_base_url=moved)
    admin = await connected(app)
    sf.add_contact(LastName="Lovelace", Phone=CALLER)
    sf.instance_url = moved  # the org moved; the next token response says so
    sf.expire_access_tokens()  # the session ended: the old token gets 401 INVALID_SESSION_ID
    await analyzed_call(app, admin.team.id, "conv_a")
    await run_pending_jobs(app)

    assert sf.refresh_calls == 1
    old_host, new_host = sf.url.split("//")[1], moved.split("//")[1]
    hosts = [(r["host"], r["method"], r["path"].removeprefix(DATA)) for r in sf.api_requests]
    assert hosts == [
        (old_host, "GET", "/search/"),  # 401, refresh, retried on the new instance
        (new_host, "GET", "/search/"),
        (new_host, "POST", "/sobjects/Task"),
    ]
    row = await OAuthConnection.get(team_id=admin.team.id, provider=NAME)
    assert row.account_data["instance_url"] == moved
    assert (await Effect.get(action="log_call")).url.startswith(f"{moved}/lightning/r/Task/")

    await analyzed_call(app, admin.team.id, "conv_b")  # a later job starts on the new host
    await run_pending_jobs(app)
    assert {r["host"] for r in sf.api_requests[3:]} == {new_host} and sf.refresh_calls == 1
    assert len(sf.tasks) == 2


async def test_request_limit_exceeded_defers_without_burning_attempts(make_app, sf, clock, caplog):
    app = await sf_app(make_app, sf, limit_retry_seconds=600)
    admin = await connected(app)
    sf.add_contact(LastName="Lovelace", Phone=CALLER)
    sf.request_limit_exceeded = True
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 0)
    assert job.run_at - clock.now() == timedelta(seconds=600)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("REQUEST_LIMIT_EXCEEDED" in m and "600" in m for m in warned)

    # Capacity back for the search, gone again for the create (it went out: "sent").
    sf.request_limit_exceeded = False
    sf.fail_next_api(200, {"searchRecords": []})
    sf.fail_next_api(
        403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    )
    clock.advance(600)
    await run_pending_jobs(app)
    job = await Job.get(id=job.id)
    assert (job.status, job.attempts, sf.tasks) == ("pending", 0, {})
    clock.advance(600)
    await run_pending_jobs(app)  # asks by CallObject first (nothing), then creates
    assert (await Job.get(id=job.id)).status == "succeeded" and len(sf.tasks) == 1
    assert [r["method"] for r in sf.api_requests[-3:]] == ["GET", "GET", "POST"]
    assert sf.api_requests[-3]["query"]["q"].startswith("SELECT Id FROM Task WHERE CallObject")


async def test_a_validation_error_is_dead_with_salesforces_reason(make_app, sf):
    app = await sf_app(make_app, sf)
    admin = await connected(app, task_status="Done")  # not a value of the org's picklist
    sf.add_contact(LastName="Lovelace", Phone=CALLER)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead" and job.attempts == 1
    assert job.last_error.endswith(
        f"salesforce refused POST {DATA}/sobjects/Task: HTTP 400 "
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for restricted picklist "
        "field: Done"
    )
    row = await Effect.get(action="log_call")
    assert row.status == "failed" and "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in row.detail
    assert sf.tasks == {}


async def test_a_5xx_retries_with_backoff_and_a_long_summary_is_cut_to_fit(make_app, sf, clock):
    app = await sf_app(make_app, sf)
    admin = await connected(app)
    sf.fail_next_api(503)
    await analyzed_call(app, admin.team.id, summary="Long. " * 8000)  # 48,000 characters
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 1)
    assert "salesforce answered HTTP 503" in job.last_error
    clock.advance(3600)
    await run_pending_jobs(app)
    (task,) = sf.tasks.values()
    assert "WhoId" not in task and len(task["Description"]) == 32_000  # the field's size


async def test_a_new_caller_becomes_one_lead_even_before_search_sees_it(make_app, sf):
    app = await sf_app(make_app, sf)
    admin = await connected(app, create_contacts=True)
    sf.index_lag = True  # new records reach SOSL minutes later
    await analyzed_call(app, admin.team.id, "conv_a")
    await analyzed_call(app, admin.team.id, "conv_b")  # the same caller again, right away
    await run_pending_jobs(app)

    (create,) = sf.requests_to("POST", "/sobjects/Lead")
    assert create["json"] == {"LastName": "Unknown caller", "Phone": CALLER, "Company": "Unknown"}
    (lead,) = sf.records["Lead"]
    assert [t["WhoId"] for t in sf.tasks.values()] == [lead, lead]
    queries = [r["query"]["q"] for r in sf.requests_to("GET", "/query/")]
    assert queries[-1] == (
        "SELECT Id, Name, FirstName, Email, Phone, MobilePhone, Company, Owner.Name FROM Lead "
        "WHERE IsConverted = false AND (Phone = '+14155550199' OR MobilePhone = '+14155550199')"
        " LIMIT 10"
    )

    resp = await app.test_client().patch(
        f"/api/teams/{admin.team.id}/settings/{NAME}",
        headers=admin.headers,
        json={"new_record_type": "Contact"},
    )
    assert resp.status_code == 200
    await analyzed_call(app, admin.team.id, "conv_c", caller="+14155550123")
    await run_pending_jobs(app)
    (contact,) = sf.requests_to("POST", "/sobjects/Contact")
    assert contact["json"] == {"LastName": "Unknown caller", "Phone": "+14155550123"}


async def test_duplicate_rules_skip_the_new_record_and_the_call_is_still_logged(make_app, sf):
    app = await sf_app(make_app, sf)
    admin = await connected(app, create_contacts=True)
    sf.fail_next_api(200, {"searchRecords": []})
    sf.fail_next_api(200, {"totalSize": 0, "done": True, "records": []})
    sf.fail_next_api(
        400,
        [
            {
                "message": "Use one of these records?",
                "errorCode": "DUPLICATES_DETECTED",
                "fields": [],
            }
        ],
    )
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert (await Job.get(handler=HANDLER)).status == "succeeded"
    created = await Effect.get(action="create_contact")
    assert created.status == "skipped" and "duplicate rules" in created.detail
    assert len(sf.tasks) == 1 and "WhoId" not in next(iter(sf.tasks.values()))
