"""Team API from an admin's side, on SQLite and PostgreSQL: creating teams, members and
roles (a team always keeps an owner), phone numbers and agent ids unique across teams,
validation errors naming the field."""

from __future__ import annotations

from typing import Any

from tests.support.identity import (
    join_by_invitation,
    make_team,
    make_user,
    member_headers,
    token_for,
)


async def owner_of(name: str, email: str) -> tuple[Any, dict[str, str]]:
    user = await make_user(email)
    team = await make_team(name, user)
    return team, await token_for(user)


async def test_any_user_creates_a_team_they_own(any_app: Any) -> None:
    user = await make_user("ann@example.com")
    client = any_app.test_client()
    headers = await token_for(user)
    resp = await client.post(
        "/api/teams", json={"name": "Acme", "time_zone": "Europe/Paris"}, headers=headers
    )
    assert resp.status_code == 201
    body = await resp.get_json()
    assert body["team"]["name"] == "Acme" and body["team"]["time_zone"] == "Europe/Paris"
    assert body["team"]["recording_retention_days"] == 90 and body["role"] == "owner"
    tid = body["team"]["id"]
    members = await (await client.get(f"/api/teams/{tid}/members", headers=headers)).get_json()
    assert [(m["user"]["email"], m["role"]) for m in members["members"]] == [
        ("ann@example.com", "owner")
    ]
    assert (await client.post("/api/teams", json={"name": "x"})).status_code == 401


async def test_only_super_admin_creates_for_someone_else(any_app: Any) -> None:
    admin = await make_user("root@example.com", super_admin=True)
    await make_user("bob@example.com")
    client = any_app.test_client()
    resp = await client.post(
        "/api/teams",
        json={"name": "Bob's", "owner_email": "bob@example.com"},
        headers=await token_for(admin),
    )
    assert resp.status_code == 201
    plain = await make_user("eve@example.com")
    resp = await client.post(
        "/api/teams",
        json={"name": "x", "owner_email": "bob@example.com"},
        headers=await token_for(plain),
    )
    assert resp.status_code == 403


async def test_team_validation_names_the_field(any_app: Any) -> None:
    team, headers = await owner_of("Acme", "ann@example.com")
    client = any_app.test_client()
    cases = [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"recording_retention_days": 0}, "recording_retention_days"),
        ({"recording_retention_days": "30"}, "recording_retention_days"),
    ]
    for payload, field in cases:
        resp = await client.patch(f"/api/teams/{team.id}", json=payload, headers=headers)
        assert resp.status_code == 400, payload
        body = await resp.get_json()
        assert body["code"] == "VALIDATION_ERROR" and body["field"] == field
    resp = await client.patch(
        f"/api/teams/{team.id}",
        json={"name": "Acme Inc", "recording_retention_days": 30},
        headers=headers,
    )
    assert (await resp.get_json())["team"]["recording_retention_days"] == 30
    resp = await client.get(f"/api/teams/{team.id}", headers=headers)
    assert (await resp.get_json())["team"]["name"] == "Acme Inc"


async def test_members_roles_and_the_last_owner(any_app: Any) -> None:
    team, owner = await owner_of("Acme", "ann@example.com")
    client = any_app.test_client()
    base = f"/api/teams/{team.id}/members"
    bob_id = await join_by_invitation(any_app, team.id, owner, "bob@example.com", "admin")
    dup = await client.post(base, json={"email": "bob@example.com"}, headers=owner)
    assert dup.status_code == 409
    bad = await client.post(base, json={"email": "c@example.com", "role": "god"}, headers=owner)
    assert (await bad.get_json())["field"] == "role"

    ann_id = (await (await client.get("/api/auth/me", headers=owner)).get_json())["user"]["id"]
    # The only owner can neither step down nor leave.
    resp = await client.patch(f"{base}/{ann_id}", json={"role": "admin"}, headers=owner)
    assert resp.status_code == 409 and (await resp.get_json())["code"] == "CONFLICT"
    assert (await client.delete(f"{base}/{ann_id}", headers=owner)).status_code == 409
    # With a second owner, the first may step down.
    resp = await client.patch(f"{base}/{bob_id}", json={"role": "owner"}, headers=owner)
    assert resp.status_code == 200
    resp = await client.patch(f"{base}/{ann_id}", json={"role": "member"}, headers=owner)
    assert resp.status_code == 200
    # Ann is now a plain member: she can read but not change.
    assert (await client.get(base, headers=owner)).status_code == 200
    resp = await client.post(base, json={"email": "c@example.com"}, headers=owner)
    assert resp.status_code == 403
    assert (
        await client.patch(f"{base}/999", json={"role": "admin"}, headers=owner)
    ).status_code == 403


async def test_admin_cannot_touch_owners_or_grant_ownership(any_app: Any) -> None:
    team, owner = await owner_of("Acme", "ann@example.com")
    admin = await member_headers(team, "adm@example.com", "admin")
    client = any_app.test_client()
    base = f"/api/teams/{team.id}/members"
    resp = await client.post(base, json={"email": "x@example.com", "role": "owner"}, headers=admin)
    assert resp.status_code == 403
    mid = await join_by_invitation(any_app, team.id, admin, "m@example.com")
    assert (
        await client.patch(f"{base}/{mid}", json={"role": "owner"}, headers=admin)
    ).status_code == 403
    assert (
        await client.patch(f"{base}/{mid}", json={"role": "admin"}, headers=admin)
    ).status_code == 200
    ann_id = (await (await client.get("/api/auth/me", headers=owner)).get_json())["user"]["id"]
    assert (await client.delete(f"{base}/{ann_id}", headers=admin)).status_code == 403
    assert (await client.delete(f"{base}/{mid}", headers=admin)).status_code == 204
    assert (await client.delete(f"{base}/{mid}", headers=admin)).status_code == 404
    resp = await client.patch(f"{base}/abc", json={"role": "admin"}, headers=admin)
    assert (await resp.get_json())["field"] == "user_id"


async def test_phone_numbers_are_e164_and_unique_across_teams(any_app: Any) -> None:
    acme, a = await owner_of("Acme", "ann@example.com")
    beta, b = await owner_of("Beta", "bob@example.com")
    client = any_app.test_client()
    for bad in ("4155550100", "+0155550100", "+1 415 555 0100", "+1234567890123456", 14155550100):
        resp = await client.post(
            f"/api/teams/{acme.id}/phone-numbers", json={"number": bad}, headers=a
        )
        assert resp.status_code == 400, bad
        assert (await resp.get_json())["field"] == "number"
    resp = await client.post(
        f"/api/teams/{acme.id}/phone-numbers", json={"number": "+14155550100"}, headers=a
    )
    assert resp.status_code == 201
    nid = (await resp.get_json())["phone_number"]["id"]
    resp = await client.post(
        f"/api/teams/{beta.id}/phone-numbers", json={"number": "+14155550100"}, headers=b
    )
    assert resp.status_code == 409 and (await resp.get_json())["field"] == "number"
    listed = await (await client.get(f"/api/teams/{acme.id}/phone-numbers", headers=a)).get_json()
    assert listed == {"phone_numbers": [{"id": nid, "number": "+14155550100"}]}
    # Beta cannot delete Acme's number by id, even through its own team path.
    assert (
        await client.delete(f"/api/teams/{beta.id}/phone-numbers/{nid}", headers=b)
    ).status_code == 404
    assert (
        await client.delete(f"/api/teams/{acme.id}/phone-numbers/{nid}", headers=a)
    ).status_code == 204
    resp = await client.post(
        f"/api/teams/{beta.id}/phone-numbers", json={"number": "+14155550100"}, headers=b
    )
    assert resp.status_code == 201


async def test_agents_are_unique_across_teams(any_app: Any) -> None:
    acme, a = await owner_of("Acme", "ann@example.com")
    beta, b = await owner_of("Beta", "bob@example.com")
    client = any_app.test_client()
    resp = await client.post(
        f"/api/teams/{acme.id}/agents", json={"agent_id": "agent_abc123", "label": "SDR"}, headers=a
    )
    assert resp.status_code == 201
    pk = (await resp.get_json())["agent"]["id"]
    resp = await client.post(
        f"/api/teams/{beta.id}/agents", json={"agent_id": "agent_abc123"}, headers=b
    )
    assert resp.status_code == 409 and (await resp.get_json())["field"] == "agent_id"
    for bad in ("", "has space", "x" * 129, None):
        resp = await client.post(f"/api/teams/{acme.id}/agents", json={"agent_id": bad}, headers=a)
        assert (await resp.get_json())["field"] == "agent_id", bad
    listed = await (await client.get(f"/api/teams/{acme.id}/agents", headers=a)).get_json()
    assert listed["agents"] == [{"id": pk, "agent_id": "agent_abc123", "label": "SDR"}]
    assert (await client.delete(f"/api/teams/{beta.id}/agents/{pk}", headers=b)).status_code == 404
    assert (await client.delete(f"/api/teams/{acme.id}/agents/{pk}", headers=a)).status_code == 204


async def test_super_admin_acts_in_every_team(any_app: Any) -> None:
    team, _ = await owner_of("Acme", "ann@example.com")
    root = await token_for(await make_user("root@example.com", super_admin=True))
    client = any_app.test_client()
    resp = await client.get(f"/api/teams/{team.id}", headers=root)
    assert resp.status_code == 200
    resp = await client.post(
        f"/api/teams/{team.id}/phone-numbers", json={"number": "+442071838750"}, headers=root
    )
    assert resp.status_code == 201
    assert (await client.get("/api/teams/9999", headers=root)).status_code == 404


def team_scoped_plugin() -> Any:
    """A route like the integration endpoints: no team in the path."""
    from quart import Blueprint, g

    from gateway.auth import team_role_required
    from hookspecs import hookimpl

    bp = Blueprint("team_scoped_test", __name__)

    @bp.get("/t/which-team")
    @team_role_required("owner", "admin")
    async def which_team() -> Any:
        return {"team": g.team.id, "role": g.role}

    class Plugin:
        @hookimpl
        def register_routes(self, app: Any, config: Any) -> Any:
            return bp

    return Plugin()


async def test_team_from_header_or_only_membership(make_app: Any, db_kind: str) -> None:
    app = await make_app(db=db_kind, extra_plugins=[("scoped", team_scoped_plugin())])
    client = app.test_client()
    ann = await make_user("ann@example.com")
    acme = await make_team("Acme", ann)
    headers = await token_for(ann)
    # Only one team: it is the one.
    resp = await client.get("/t/which-team", headers=headers)
    assert await resp.get_json() == {"team": acme.id, "role": "owner"}
    # Two teams: the caller must say which.
    beta = await make_team("Beta", ann)
    resp = await client.get("/t/which-team", headers=headers)
    assert resp.status_code == 400 and (await resp.get_json())["field"] == "team_id"
    resp = await client.get("/t/which-team", headers={**headers, "X-Team-Id": str(beta.id)})
    assert (await resp.get_json())["team"] == beta.id
    # A browser following a link cannot set headers: ?team_id= works too.
    resp = await client.get(f"/t/which-team?team_id={beta.id}", headers=headers)
    assert (await resp.get_json())["team"] == beta.id
    # Someone else's team through the header: 403, as through the path.
    other = await make_team("Other", await make_user("o@example.com"))
    resp = await client.get("/t/which-team", headers={**headers, "X-Team-Id": str(other.id)})
    assert resp.status_code == 403
    resp = await client.get("/t/which-team", headers={**headers, "X-Team-Id": "abc"})
    assert (await resp.get_json())["field"] == "team_id"
    assert (await client.get("/t/which-team")).status_code == 401


async def test_two_owners_demoting_each_other_at_once_keep_one_owner(any_app: Any) -> None:
    import asyncio

    from gateway.identity import service
    from gateway.identity.models import Membership

    ann = await make_user("ann@example.com")
    bob = await make_user("bob@example.com")
    team = await make_team("Acme", ann)
    await service.add_member(team, bob, "owner")
    ha, hb = await token_for(ann), await token_for(bob)
    client = any_app.test_client()
    base = f"/api/teams/{team.id}/members"
    for _ in range(3):
        results = await asyncio.gather(
            client.patch(f"{base}/{bob.id}", json={"role": "admin"}, headers=ha),
            client.patch(f"{base}/{ann.id}", json={"role": "admin"}, headers=hb),
        )
        codes = sorted(r.status_code for r in results)
        owners = await Membership.filter(team_id=team.id, role="owner").count()
        assert owners == 1, codes
        # One demotion won; the loser is now an admin and is refused (403) or saw the
        # last-owner rule (409). Restore both owners for the next round.
        assert codes[0] == 200 and codes[1] in (403, 409)
        await Membership.filter(team_id=team.id).update(role="owner")
