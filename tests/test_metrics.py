"""GET /metrics as Prometheus and an operator see it: the text format, who may read it,
and figures that follow what happened (webhooks, group commits, the job queue)."""

from __future__ import annotations

import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.jobs.models import Job
from gateway.oauth.models import OAuthConnection
from tests.support.identity import make_team, make_user, token_for
from tests.support.webhook_plugin import PATH, TestPlugin, delivery

SCRAPE_TOKEN = "scrape-token-0123456789abcdef"


async def start(make_app, db="sqlite", **settings):
    app = await make_app(db=db, extra_plugins=[("testhooks", TestPlugin())], **settings)
    return app.test_client()


def samples(text: str, replica: str | None = None) -> dict[tuple[str, tuple], float]:
    """``{(name, labels): value}``; every series must carry the ``replica`` label (the
    host name unless configured), which is left out of the keys."""
    out = {}
    replica = replica or socket.gethostname()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = dict(s.labels)
            assert labels.pop("replica", None) == replica, s
            out[(s.name, tuple(sorted(labels.items())))] = s.value
    return out


async def scrape(client, headers) -> dict:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return samples(await response.get_data(as_text=True))


async def test_only_super_admins_or_the_scrape_token_may_read(make_app):
    client = await start(make_app, metrics_token=SCRAPE_TOKEN)
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert set(await anonymous.get_json()) == {"error", "code"}
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    member = await make_user("member@example.com")
    assert (await client.get("/metrics", headers=await token_for(member))).status_code == 403
    root = await make_user("root@example.com", super_admin=True)
    assert await scrape(client, await token_for(root))
    body = await scrape(client, {"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert SCRAPE_TOKEN not in str(body)


async def test_without_a_scrape_token_only_super_admins_read(make_app):
    client = await start(make_app)
    assert (await client.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 401


async def test_figures_follow_webhooks_and_the_queue(make_app, clock, db_kind):
    client = await start(make_app, db=db_kind, metrics_token=SCRAPE_TOKEN)
    auth = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    for event_id in ("m1", "m2", "m1"):  # the second m1 is a redelivery
        body, headers = delivery({"id": event_id, "type": "thing.x"})
        assert (await client.post(PATH, data=body, headers=headers)).status_code == 200
    body, headers = delivery({"id": "m3", "type": "thing.x"})
    headers["X-Test-Signature"] = "0" * 64
    assert (await client.post(PATH, data=body, headers=headers)).status_code == 401
    team = await make_team("Acme")
    await OAuthConnection.create(
        team=team,
        provider="acme_crm",
        status="needs_reconnect",
        connected_at=clock.now(),
        updated_at=clock.now(),
    )
    clock.advance(90)  # the two jobs have waited a minute and a half

    m = await scrape(client, auth)
    requests = "gateway_webhook_requests_total"
    assert m[(requests, (("outcome", "received"), ("source", "test.events")))] == 3
    assert m[(requests, (("outcome", "duplicate"), ("source", "test.events")))] == 1
    assert m[(requests, (("outcome", "unauthorized"), ("source", "test.events")))] == 1
    assert m[("gateway_webhook_commits_total", ())] == 3  # one by one: sent in sequence
    assert m[("gateway_webhook_committed_deliveries_total", ())] == 3
    assert m[("gateway_jobs", (("status", "pending"),))] == 2
    assert m[("gateway_jobs_oldest_due_seconds", ())] == pytest.approx(90)
    connections = (
        "gateway_oauth_connections",
        (("provider", "acme_crm"), ("status", "needs_reconnect")),
    )
    assert m[connections] == 1
    assert m[("process_resident_memory_bytes", ())] > 0

    await Job.all().update(status="succeeded")
    m = await scrape(client, auth)
    assert m[("gateway_jobs", (("status", "succeeded"),))] == 2
    assert ("gateway_jobs", (("status", "pending"),)) not in m
    assert m[("gateway_jobs_oldest_due_seconds", ())] == 0


async def test_every_series_names_the_configured_replica(make_app):
    client = await start(make_app, metrics_token=SCRAPE_TOKEN, replica_name="api-7")
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    m = samples(await response.get_data(as_text=True), replica="api-7")
    requests = "gateway_webhook_requests_total"
    assert m[(requests, (("outcome", "received"), ("source", "test.events")))] == 0
    assert not any(name.endswith("_created") for name, _ in m)
