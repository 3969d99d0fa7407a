"""Events and jobs API as admins use it: scoping (super admin vs team admin), filters,
pagination, replay and retry."""

from __future__ import annotations

import pytest

from gateway.identity.models import PhoneNumber
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from tests.support.identity import make_team, make_user, member_headers, token_for
from tests.support.webhook_plugin import PATH, TestPlugin, delivery

A_NUMBER, B_NUMBER = "+15005550001", "+15005550002"


@pytest.fixture
async def world(make_app):
    plugin = TestPlugin()
    app = await make_app(extra_plugins=[("testhooks", plugin)])
    client = app.test_client()
    team_a, team_b = await make_team("A"), await make_team("B")
    await PhoneNumber.create(team=team_a, number=A_NUMBER)
    await PhoneNumber.create(team=team_b, number=B_NUMBER)
    for ident, number, kind in [
        ("a1", A_NUMBER, "thing.x"),
        ("a2", A_NUMBER, "thing.flaky"),
        ("b1", B_NUMBER, "thing.x"),
        ("u1", "+19999999999", "thing.x"),
    ]:
        body, headers = delivery({"id": ident, "type": kind, "number": number})
        assert (await client.post(PATH, data=body, headers=headers)).status_code == 200
    root = await token_for(await make_user("root@example.com", super_admin=True))
    admin_a = await member_headers(team_a, "admin@a.example", "admin")
    member_a = await member_headers(team_a, "member@a.example", "member")
    return {
        "app": app, "client": client, "plugin": plugin, "a": team_a, "b": team_b,
        "root": root, "admin_a": admin_a, "member_a": member_a,
    }  # fmt: skip


def keys(body):
    return sorted(item["dedup_key"] for item in body["items"])


async def test_super_admin_sees_every_event_including_unrouted(world):
    c = world["client"]
    body = await (await c.get("/api/events", headers=world["root"])).get_json()
    assert keys(body) == ["a1", "a2", "b1", "u1"]
    body = await (await c.get("/api/events?status=unrouted", headers=world["root"])).get_json()
    assert keys(body) == ["u1"] and body["items"][0]["team_id"] is None
    url = f"/api/events?team_id={world['b'].id}"
    assert keys(await (await c.get(url, headers=world["root"])).get_json()) == ["b1"]


async def test_team_admin_sees_only_their_team(world):
    c = world["client"]
    body = await (await c.get("/api/events", headers=world["admin_a"])).get_json()
    assert keys(body) == ["a1", "a2"]
    body = await (await c.get("/api/events?type=thing.flaky", headers=world["admin_a"])).get_json()
    assert keys(body) == ["a2"]
    # Asking for another team's events is refused, not silently widened or narrowed.
    url = f"/api/events?team_id={world['b'].id}"
    assert (await c.get(url, headers=world["admin_a"])).status_code == 403
    jobs = await (await c.get("/api/jobs", headers=world["admin_a"])).get_json()
    assert {j["team_id"] for j in jobs["items"]} == {world["a"].id}


async def test_other_teams_and_unrouted_rows_are_404_for_team_admins(world):
    c = world["client"]
    b1 = (await Job.filter(team_id=world["b"].id).first()).event_id
    u1 = (await Job.filter(team_id=None).first()).event_id
    for event_id in (b1, u1):
        response = await c.get(f"/api/events/{event_id}", headers=world["admin_a"])
        assert response.status_code == 404
        replay = await c.post(f"/api/events/{event_id}/replay", headers=world["admin_a"])
        assert replay.status_code == 404
    assert (await c.get(f"/api/events/{u1}", headers=world["root"])).status_code == 200


async def test_members_and_strangers_are_refused(world):
    c = world["client"]
    assert (await c.get("/api/events", headers=world["member_a"])).status_code == 403
    response = await c.get("/api/jobs")
    assert response.status_code == 401
    assert set(await response.get_json()) == {"error", "code"}
    stats = await c.get("/api/webhooks/stats", headers=world["admin_a"])
    assert stats.status_code == 403


async def test_event_detail_has_payload_and_jobs(world):
    c = world["client"]
    a2 = (await Job.filter(handler="test.flaky").first()).event_id
    body = await (await c.get(f"/api/events/{a2}", headers=world["admin_a"])).get_json()
    assert body["payload"]["id"] == "a2" and body["status"] == "routed"
    assert sorted(j["handler"] for j in body["jobs"]) == ["test.flaky", "test.record"]


async def test_replay_runs_the_handlers_again(world):
    c, app, plugin = world["client"], world["app"], world["plugin"]
    await run_pending_jobs(app)
    a1 = (await Job.filter(team_id=world["a"].id, handler="test.record").first()).event_id
    response = await c.post(f"/api/events/{a1}/replay", headers=world["admin_a"])
    assert response.status_code == 202
    body = await response.get_json()
    assert [j["status"] for j in body["jobs"]] == ["pending"]
    await run_pending_jobs(app)
    assert plugin.ran.count(("record", "a1")) == 2


async def test_retry_dead_job(world, clock):
    c, app, plugin = world["client"], world["app"], world["plugin"]
    plugin.fail_mode = "permanent"
    await run_pending_jobs(app)
    dead = await (await c.get("/api/jobs?status=dead", headers=world["admin_a"])).get_json()
    assert [j["handler"] for j in dead["items"]] == ["test.flaky"]
    job_id = dead["items"][0]["id"]
    plugin.fail_mode = None
    response = await c.post(f"/api/jobs/{job_id}/retry", headers=world["admin_a"])
    assert response.status_code == 202 and (await response.get_json())["status"] == "pending"
    again = await c.post(f"/api/jobs/{job_id}/retry", headers=world["admin_a"])
    assert again.status_code == 409  # not dead any more: retrying could run it twice
    await run_pending_jobs(app)
    assert (await Job.get(id=job_id)).status == "succeeded"
    assert plugin.ran.count(("flaky", "a2")) == 2


async def test_pagination_walks_every_row_once(world):
    c = world["client"]
    seen, cursor = [], None
    for _ in range(10):
        url = "/api/events?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = await (await c.get(url, headers=world["root"])).get_json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 == len(set(seen)) and seen == sorted(seen, reverse=True)
    bad = await c.get("/api/events?limit=abc", headers=world["root"])
    assert bad.status_code == 400
