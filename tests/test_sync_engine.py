"""The sync engine through a CRM plugin written only against the contract
(tests/support/crm_plugin.py) and a loopback CRM (tests/support/fake_crm.py): exactly
once across duplicates, retries and replays; not connected; needs reconnect; rate
limits; tokens and refresh; nothing personal or secret in the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.sync import RateLimit
from gateway.sync.ledger import analysis_subject
from gateway.sync.models import Effect
from gateway.testing import (
    connected_admin,
    integration_status,
    provider_plugin,
    seed_admin,
)
from tests.support.crm_plugin import NAME, AcmeCrm
from tests.support.fake_crm import FakeCrm
from tests.support.sync_helpers import CALLER, SECRET_WORDS, analyzed_call

HANDLER = f"{NAME}.log_call"


@pytest.fixture
async def crm():
    async with FakeCrm() as server:
        yield server


async def crm_app(make_app: Any, server: FakeCrm, db: str = "sqlite", **options: Any) -> Any:
    limits = options.pop("limits", ())
    base_url = options.pop("base_url", server.url)
    return await make_app(
        db=db,
        plugins={NAME: {}, f"test_{NAME}": {}},
        extra_plugins=[
            provider_plugin(server, name=NAME),
            (NAME, AcmeCrm(base_url, limits=limits, **options)),
        ],
    )


async def connected(app: Any) -> Any:
    return await connected_admin(app, NAME)


async def test_hook_register_crms(make_app, crm):
    app = await crm_app(make_app, crm)
    gw = app.extensions["gateway"]
    assert list(gw.registry("register_crms")) == [NAME]
    handler = gw.registry("register_event_handlers")[HANDLER]
    assert handler.event_types == ("voice.call.analyzed",)


async def test_a_duplicate_a_retry_and_a_replay_log_one_call(make_app, crm, clock, db_kind):
    app = await crm_app(make_app, crm, db=db_kind)
    admin = await connected(app)
    contact = crm.add_contact("Ada Lovelace", CALLER, "Analytical Engines")
    emitted = await analyzed_call(app, admin.team.id)
    again = await analyzed_call(app, admin.team.id)  # the same delivery once more
    assert emitted.new and not again.new and again.jobs == 0

    crm.fail_after_create = True  # created at the CRM, the answer lost (502)
    await run_pending_jobs(app)
    assert len(crm.calls) == 1
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 1)
    clock.advance(3600)
    await run_pending_jobs(app)  # the retry finds the call by its marker
    assert len(crm.calls) == 1
    assert len(crm.api_requests("POST", "/api/calls")) == 1
    job = await Job.get(id=job.id)
    assert job.status == "succeeded"

    client = app.test_client()
    replay = await client.post(f"/api/events/{emitted.event_id}/replay", headers=admin.headers)
    assert replay.status_code == 202
    await run_pending_jobs(app)
    assert len(crm.calls) == 1 and len(crm.api_requests("POST", "/api/calls")) == 1
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 2

    (call,) = crm.calls.values()
    assert call["contact_id"] == contact and call["summary"].startswith("Asked about pricing")
    row = await Effect.get(subject__startswith="analysis:", action="log_call")
    assert (row.status, row.provider_id, row.plugin) == ("done", call["id"], NAME)
    assert row.url == f"https://crm.example/calls/{call['id']}" and call["ref"] == row.marker


async def test_a_new_caller_becomes_a_contact_once(make_app, crm, clock):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    await analyzed_call(app, admin.team.id)
    crm.fail_next(503)  # the contact search fails once: retried with backoff
    await run_pending_jobs(app)
    clock.advance(3600)
    await run_pending_jobs(app)
    assert [c["phone"] for c in crm.contacts.values()] == [CALLER]
    (call,) = crm.calls.values()
    assert call["contact_id"] == next(iter(crm.contacts))
    actions = {e.action: e.status for e in await Effect.all()}
    assert actions == {"create_contact": "done", "log_call": "done"}


async def test_the_personalized_contact_saves_a_search(make_app, crm):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    known = crm.add_contact("Ada", CALLER)
    found = {"contact": {"source": NAME, "id": known, "name": "Ada"}}
    await analyzed_call(app, admin.team.id, personalization=found)
    await run_pending_jobs(app)
    assert crm.api_requests("GET", "/api/contacts") == []
    assert [c["contact_id"] for c in crm.calls.values()] == [known]


async def test_not_connected_completes_with_the_reason_recorded(make_app, crm):
    app = await crm_app(make_app, crm)
    admin = await seed_admin()
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.last_error) == ("succeeded", None)
    row = await Effect.get(action="log_call")
    assert (row.status, row.detail) == ("skipped", "not connected")
    assert crm.requests == []


async def test_needs_reconnect_is_dead_with_a_reason_the_admin_sees(make_app, crm, clock):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    crm.revoke_all_refresh_tokens()  # the customer removed the app at the CRM
    clock.advance(7200)  # the access token expired: the refresh is refused
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    client = app.test_client()
    jobs = await (
        await client.get(f"/api/jobs?handler={HANDLER}", headers=admin.headers)
    ).get_json()
    (job,) = jobs["items"]
    assert job["status"] == "dead"
    assert "Acme CRM needs to be connected again by a team admin" in job["last_error"]
    status = await integration_status(client, admin, NAME)
    assert status["status"] == "needs_reconnect" and status["last_error"]
    row = await Effect.get(action="log_call")
    assert row.status == "failed" and "connected again" in row.detail
    assert crm.calls == {}


async def test_rate_limit_reschedules_without_burning_attempts(make_app, crm, clock):
    # 3 requests per minute per account: each call costs a contact search and a create.
    app = await crm_app(make_app, crm, limits=(RateLimit(3, 60),))
    admin = await connected(app)
    crm.add_contact("Ada", CALLER)
    for n in range(3):
        await analyzed_call(app, admin.team.id, f"conv_{n}")
    await run_pending_jobs(app)
    assert len(crm.requests) == 3  # never more than the limit
    assert len(crm.calls) == 1
    waiting = await Job.filter(handler=HANDLER, status="pending")
    assert len(waiting) == 2 and {j.attempts for j in waiting} == {0}
    assert all(j.history is None and j.last_error is None for j in waiting)
    assert all(j.run_at > clock.now() for j in waiting)
    # The contact search of the second call went out before its create was refused:
    # what it found is kept, so the retry does not search again.
    second = await Effect.filter(action="log_call", status="pending").first()
    assert second is not None and second.data.get("contact_id") and not second.sent


async def test_tokens_refresh_once_after_a_401_and_retry_once(make_app, crm):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    crm.add_contact("Ada", CALLER)
    crm.expire_access_tokens()  # the CRM forgets the token before its expiry
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert crm.refresh_calls == 1
    assert [r["path"] for r in crm.requests] == ["/api/contacts", "/api/contacts", "/api/calls"]
    assert len(crm.calls) == 1
    assert (await Job.get(handler=HANDLER)).status == "succeeded"


async def test_a_second_401_after_refresh_is_dead_not_retried_forever(make_app, crm):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    crm.fail_next(401)
    crm.fail_next(401)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead" and "refused a freshly refreshed token" in job.last_error
    assert crm.refresh_calls == 1 and crm.calls == {}


async def test_throttled_by_the_provider_retries_after_retry_after(make_app, crm, clock):
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    crm.add_contact("Ada", CALLER)
    crm.fail_next(429, {"Retry-After": "42"})
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 0)
    assert round((job.run_at - clock.now()).total_seconds()) == 42
    clock.advance(42)
    await run_pending_jobs(app)
    assert len(crm.calls) == 1


async def test_handlers_get_tokens_without_an_explicit_app(make_app, crm):
    """The documented call, get_access_token(team, provider), works inside a job."""
    from gateway import hookimpl
    from gateway.events import EventHandler
    from gateway.oauth import get_access_token

    seen: list[str] = []

    class Handler:
        @hookimpl
        def register_event_handlers(self, config):
            async def run(ctx):
                seen.append(await get_access_token(ctx.event.team_id, NAME))
                seen.append(await ctx.access_token(NAME))

            return [EventHandler("tokens.check", ("voice.call.analyzed",), run)]

    app = await make_app(
        plugins={f"test_{NAME}": {}, "tokens": {}},
        extra_plugins=[provider_plugin(crm, name=NAME), ("tokens", Handler())],
    )
    admin = await connected(app)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0].startswith("at-")
    assert (await Job.get(handler="tokens.check")).status == "succeeded"


async def test_no_token_and_no_transcript_in_any_log_line(make_app, crm, clock, caplog):
    caplog.set_level(logging.DEBUG)
    app = await crm_app(make_app, crm)
    admin = await connected(app)
    crm.expire_access_tokens()
    crm.fail_next(500)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(crm.calls) == 1
    tokens = [t for grant in crm.grants.values() for t in grant.access_tokens]
    tokens += crm.live_refresh_tokens()
    above_debug = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    text = "\n".join(above_debug)
    assert text and SECRET_WORDS not in text and "4111" not in text
    assert not [t for t in tokens if t in text]


async def test_effects_of_a_call_for_the_timeline(make_app, crm):
    from gateway.calls.models import CallAnalysis
    from gateway.calls.status import CallUpdate, upsert_calls
    from gateway.sync import effects_for_call
    from tests.support.sync_helpers import T0

    app = await crm_app(make_app, crm)
    admin = await connected(app)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    analysis = await CallAnalysis.get(conversation_id="conv_1")
    assert [(e.plugin, e.action) for e in await effects_for_call(analysis)] == [
        (NAME, "log_call"),
        (NAME, "create_contact"),
    ]
    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        await upsert_calls(
            [CallUpdate(external_id="CA1", status="completed", sequence=1, at=T0)],
            using_db=conn,
            now=T0,
        )
    from gateway.calls.models import Call

    call = await Call.get(external_id="CA1")
    await call.update_from_dict({"team_id": admin.team.id, "conversation_id": "conv_1"}).save()
    resp = await app.test_client().get(f"/api/calls/{call.id}/effects", headers=admin.headers)
    body = await resp.get_json()
    assert resp.status_code == 200, body
    assert body["analysis_id"] == analysis.id
    assert [(e["action"], e["status"]) for e in body["effects"]] == [
        ("log_call", "done"),
        ("create_contact", "done"),
    ]
    assert body["effects"][0]["url"].startswith("https://crm.example/calls/")
    assert analysis_subject(analysis.id) == body["effects"][0]["subject"]


async def test_a_base_url_from_the_connection_is_read_from_the_stored_account(make_app, crm):
    """Salesforce-style: the API host is part of the connection (an instance URL)."""
    from gateway.oauth.models import OAuthConnection

    app = await crm_app(make_app, crm, base_url=lambda account: account["instance_url"])
    admin = await connected(app)
    await OAuthConnection.filter(team_id=admin.team.id).update(
        account_data={"instance_url": crm.url}
    )
    crm.add_contact("Ada", CALLER)
    await analyzed_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert len(crm.calls) == 1
