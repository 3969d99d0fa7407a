"""A member of team A can never read or change anything of team B: every route that
takes a ``<team_id>`` (including routes added later by other parts and plugins) is tried
with every method as an owner of another team, and must answer 403."""

from __future__ import annotations

from typing import Any

from tests.support.identity import make_team, make_user, token_for


def team_routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if "team_id" not in rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.rule, method))
    return routes


def fill(rule: str, team_id: int) -> str:
    import re

    path = rule.replace("<team_id>", str(team_id))
    # Other variables get a plausible value; the team check must come first anyway.
    path = re.sub(r"<int:[^>]+>", "1", path)
    return re.sub(r"<(?:[a-z]+:)?[^>]+>", "1", path)


async def test_every_team_route_refuses_other_teams(any_app: Any) -> None:
    victim_owner = await make_user("victim@example.com")
    victim = await make_team("Victim", victim_owner)
    attacker = await make_user("attacker@example.com")
    await make_team("Attacker", attacker)
    headers = await token_for(attacker)
    client = any_app.test_client()
    routes = team_routes(any_app)
    assert len(routes) >= 12  # the identity routes alone; more as features land
    for rule, method in routes:
        resp = await client.open(
            fill(rule, victim.id), method=method, headers=headers, json={"name": "x"}
        )
        assert resp.status_code == 403, f"{method} {rule} answered {resp.status_code}"
        assert (await resp.get_json())["code"] == "FORBIDDEN"
    # Unknown team ids look the same as other teams' (no existence oracle).
    resp = await client.get("/api/teams/987654", headers=headers)
    assert resp.status_code == 403


async def test_every_team_route_requires_credentials(any_app: Any) -> None:
    team = await make_team("Victim", await make_user("victim@example.com"))
    client = any_app.test_client()
    for rule, method in team_routes(any_app):
        resp = await client.open(fill(rule, team.id), method=method, json={})
        assert resp.status_code == 401, f"{method} {rule} answered {resp.status_code}"


async def test_member_cannot_change_own_team(any_app: Any) -> None:
    """Members read; every write route of their own team is 403 for them."""
    owner = await make_user("owner@example.com")
    team = await make_team("Acme", owner)
    from gateway.identity import service

    member = await make_user("member@example.com")
    await service.add_member(team, member, "member")
    headers = await token_for(member)
    client = any_app.test_client()
    writes = [(r, m) for r, m in team_routes(any_app) if m != "GET" and r.startswith("/api/teams")]
    assert writes
    for rule, method in writes:
        resp = await client.open(fill(rule, team.id), method=method, headers=headers, json={})
        assert resp.status_code == 403, f"{method} {rule} answered {resp.status_code}"


async def test_every_header_scoped_route_refuses_other_teams(any_app: Any) -> None:
    """Routes without a team in the path (the team from ``X-Team-Id``) that use
    ``@team_role_required``: naming another team in the header is 403 too."""
    victim = await make_team("Victim", await make_user("victim@example.com"))
    attacker = await make_user("attacker@example.com")
    await make_team("Attacker", attacker)
    headers = {**(await token_for(attacker)), "X-Team-Id": str(victim.id)}
    client = any_app.test_client()
    checked = 0
    for rule in any_app.url_map.iter_rules():
        view = any_app.view_functions.get(rule.endpoint)
        if "team_id" in rule.arguments or not hasattr(view, "gateway_team_roles"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            resp = await client.open(fill(rule.rule, 0), method=method, headers=headers, json={})
            assert resp.status_code == 403, f"{method} {rule.rule} answered {resp.status_code}"
            checked += 1
    # At least the integration endpoints (connect/disconnect/status) are header-scoped.
    assert checked > 0
