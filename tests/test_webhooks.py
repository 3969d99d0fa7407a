"""Webhook ingestion as a sender sees it: signed POSTs to /api/webhooks/<path>, through
the test plugin's HMAC source (tests/support/webhook_plugin.py)."""

from __future__ import annotations

import asyncio

import pytest
from tortoise import connections

from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.webhooks.models import WebhookEvent
from tests.support.identity import make_team, make_user, token_for
from tests.support.webhook_plugin import PATH, TestPlugin, delivery, sign

NUMBER = "+15005550006"


@pytest.fixture
def plugin() -> TestPlugin:
    return TestPlugin()


async def start(make_app, plugin, db="sqlite", **kw):
    return await make_app(db=db, extra_plugins=[("testhooks", plugin)], **kw)


async def team_with_number(name="Acme", number=NUMBER):
    team = await make_team(name)
    await PhoneNumber.create(team=team, number=number)
    return team


async def send(client, *events, headers=None):
    body, hdrs = delivery(*events)
    return await client.post(PATH, data=body, headers={**hdrs, **(headers or {})})


async def test_event_is_stored_routed_applied_and_queued(make_app, plugin):
    app = await start(make_app, plugin)
    team = await team_with_number()
    client = app.test_client()
    response = await send(client, {"id": "e1", "type": "thing.flaky", "number": NUMBER})
    assert response.status_code == 200
    assert await response.get_json() == {"received": 1}
    event = await WebhookEvent.get(source="test.events", dedup_key="e1")
    assert (event.status, event.team_id, event.type) == ("routed", team.id, "thing.flaky")
    assert plugin.applied == ["e1"]
    jobs = await Job.filter(event_id=event.id).order_by("handler")
    assert [(j.handler, j.status, j.team_id) for j in jobs] == [
        ("test.flaky", "pending", team.id),
        ("test.record", "pending", team.id),
    ]
    assert [j.max_attempts for j in jobs] == [3, 8]  # handler override, gateway default
    assert await run_pending_jobs(app) == 2
    assert sorted(plugin.ran) == [("flaky", "e1"), ("record", "e1")]
    assert await run_pending_jobs(app) == 0


async def test_team_found_by_agent_id(make_app, plugin):
    app = await start(make_app, plugin)
    team = await make_team("Agents")
    await VoiceAgent.create(team=team, agent_id="agent_1")
    await send(app.test_client(), {"id": "a1", "type": "thing.x", "agent": "agent_1"})
    assert (await WebhookEvent.get(dedup_key="a1")).team_id == team.id


async def test_unrouted_event_is_stored_and_still_queued(make_app, plugin):
    app = await start(make_app, plugin)
    response = await send(app.test_client(), {"id": "u1", "type": "thing.x", "number": "+1999"})
    assert response.status_code == 200
    event = await WebhookEvent.get(dedup_key="u1")
    assert (event.status, event.team_id) == ("unrouted", None)
    job = await Job.get(event_id=event.id)
    assert (job.handler, job.team_id) == ("test.record", None)


@pytest.mark.parametrize(
    "attack", ["missing", "wrong", "tampered_body", "other_url", "host_header_url"]
)
async def test_bad_signature_is_401_counted_and_nothing_processed(make_app, plugin, attack):
    app = await start(make_app, plugin)
    client = app.test_client()
    body, headers = delivery({"id": "x1", "type": "thing.x"})
    if attack == "missing":
        del headers["X-Test-Signature"]
    elif attack == "wrong":
        headers["X-Test-Signature"] = "0" * 64
    elif attack == "tampered_body":
        body = body.replace(b"x1", b"x2")
    elif attack == "other_url":
        headers["X-Test-Signature"] = sign(body, "https://evil.test" + PATH)
    elif attack == "host_header_url":
        # Signed for what the Host header says, not the configured public URL.
        headers["X-Test-Signature"] = sign(body, "http://internal:8080" + PATH)
        headers["Host"] = "internal:8080"
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status_code == 401
    assert await response.get_json() == {"error": "Invalid signature", "code": "UNAUTHORIZED"}
    assert await WebhookEvent.all().count() == 0 and await Job.all().count() == 0
    assert plugin.applied == []
    admin = await make_user("root@example.com", super_admin=True)
    stats = await client.get("/api/webhooks/stats", headers=await token_for(admin))
    assert (await stats.get_json())["test.events"]["unauthorized"] == 1


async def test_query_string_is_part_of_the_signed_url(make_app, plugin):
    app = await start(make_app, plugin)
    body, headers = delivery({"id": "q1", "type": "thing.x"})
    headers["X-Test-Signature"] = sign(body, "https://gateway.test" + PATH + "?a=1&b=2")
    response = await app.test_client().post(PATH + "?a=1&b=2", data=body, headers=headers)
    assert response.status_code == 200


async def test_duplicate_is_success_without_apply_or_jobs(make_app, plugin):
    app = await start(make_app, plugin)
    client = app.test_client()
    first = await send(client, {"id": "d1", "type": "thing.x"})
    second = await send(client, {"id": "d1", "type": "thing.x"})
    assert first.status_code == second.status_code == 200
    assert await first.get_json() == await second.get_json()
    assert await WebhookEvent.all().count() == 1
    assert await Job.all().count() == 1
    assert plugin.applied == ["d1"]


async def test_racing_identical_deliveries_make_one_event(make_app, plugin, db_kind):
    app = await start(make_app, plugin, db=db_kind)
    client = app.test_client()
    responses = await asyncio.gather(
        *(send(client, {"id": "r1", "type": "thing.x"}) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    assert await WebhookEvent.filter(dedup_key="r1").count() == 1
    assert await Job.all().count() == 1
    assert plugin.applied == ["r1"]


async def test_long_dedup_keys_are_hashed_not_truncated(make_app, plugin):
    app = await start(make_app, plugin)
    client = app.test_client()
    base = "k" * 300
    await send(client, {"id": base + "a", "type": "thing.x"}, {"id": base + "b", "type": "thing.x"})
    assert await WebhookEvent.all().count() == 2


async def test_database_failure_answers_503_and_stores_nothing(make_app, plugin, db_kind):
    """A real failure in the middle of the transaction: the jobs table is gone after the
    event row was inserted and ``apply`` ran. Everything rolls back, the sender gets a
    5xx and retries; the retry after recovery is processed normally."""
    app = await start(make_app, plugin, db=db_kind)
    client = app.test_client()
    conn = connections.get("default")
    await conn.execute_script("ALTER TABLE jobs RENAME TO jobs_away")
    try:
        response = await send(client, {"id": "f1", "type": "thing.x"})
    finally:
        await conn.execute_script("ALTER TABLE jobs_away RENAME TO jobs")
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "SERVICE_UNAVAILABLE"
    assert plugin.applied == ["f1"]  # apply ran inside the transaction ...
    assert await WebhookEvent.all().count() == 0  # ... and was rolled back with it
    retry = await send(client, {"id": "f1", "type": "thing.x"})
    assert retry.status_code == 200
    assert await WebhookEvent.all().count() == 1 and await Job.all().count() == 1


async def test_apply_error_rolls_back_and_answers_5xx(make_app, plugin):
    app = await start(make_app, plugin)
    plugin.apply_error = True
    response = await send(app.test_client(), {"id": "p1", "type": "thing.x"})
    assert response.status_code == 500
    assert set(await response.get_json()) == {"error", "code"}
    assert await WebhookEvent.all().count() == 0


async def test_unparseable_body_is_400(make_app, plugin):
    app = await start(make_app, plugin)
    body = b"not json"
    headers = {"Content-Type": "application/json", "X-Test-Signature": sign(body)}
    response = await app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 400
    assert await WebhookEvent.all().count() == 0
