"""Joining a team, from the attacker's side and the invitee's, on SQLite and PostgreSQL.

A team admin can no longer put someone in their team, nor learn anything about their
account: adding an address creates an invitation, and only the person signed in as that
address (or, for an address without an account, the person who sets its password with
the one-time link) can accept it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from gateway.identity.models import Invitation, Membership, User
from tests.support.identity import PASSWORD, from_ip, login, make_team, make_user, token_for

INVITE_KEYS = {"id", "email", "role", "invited_by", "created_at", "expires_at"}


async def setup_team(app: Any) -> tuple[Any, dict[str, str], Any]:
    ann = await make_user("ann@example.com")
    team = await make_team("Acme", ann)
    return team, await token_for(ann), app.test_client()


async def invite(client: Any, team: Any, headers: dict[str, str], email: str, **body: Any) -> Any:
    return await client.post(
        f"/api/teams/{team.id}/members", json={"email": email, **body}, headers=headers
    )


async def test_adding_an_existing_user_reveals_nothing_and_adds_no_one(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    await make_user("root@example.com", super_admin=True)
    users_before = await User.all().count()
    known = await invite(client, team, ann, "root@example.com", role="admin")
    unknown = await invite(client, team, ann, "nobody@example.com", role="admin")
    for resp in (known, unknown):
        assert resp.status_code == 201
        body = (await resp.get_json())["invitation"]
        # The same answer whether or not an account exists: no name, no flags.
        assert set(body) == INVITE_KEYS | {"token", "accept_url"}
        assert body["accept_url"].endswith(f"/api/invitations/{body['token']}")
        assert resp.headers["Cache-Control"] == "no-store"
    assert await User.all().count() == users_before  # no global user was created
    assert await Membership.filter(team_id=team.id).count() == 1  # Ann only
    listed = await (await client.get(f"/api/teams/{team.id}/members", headers=ann)).get_json()
    assert [m["user"]["email"] for m in listed["members"]] == ["ann@example.com"]


async def test_the_inviter_cannot_accept_for_an_existing_account(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    await make_user("root@example.com", super_admin=True)
    token = (await (await invite(client, team, ann, "root@example.com")).get_json())["invitation"][
        "token"
    ]
    url = f"/api/invitations/{token}/accept"
    anonymous = any_app.test_client()
    # Setting a password on someone's existing account: refused.
    resp = await anonymous.post(url, json={"password": "attacker chosen password"})
    assert resp.status_code == 409
    # Without signing in: refused; signed in as the inviter: refused.
    assert (await anonymous.post(url, json={})).status_code == 401
    assert (await client.post(url, json={}, headers=ann)).status_code == 403
    assert await Membership.filter(team_id=team.id).count() == 1
    # The victim's password is untouched: their own login still works, the attacker's not.
    await login(any_app.test_client(), "root@example.com")
    resp = await any_app.test_client().post(
        "/api/auth/login",
        json={"email": "root@example.com", "password": "attacker chosen password"},
    )
    assert resp.status_code == 401


async def test_the_invited_user_accepts_signed_in_and_only_once(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    bob = await make_user("bob@example.com")
    resp = await invite(client, team, ann, "BOB@example.com", role="admin")
    token = (await resp.get_json())["invitation"]["token"]
    browser = any_app.test_client()
    cookie = await login(browser, "bob@example.com")
    shown = await browser.get(f"/api/invitations/{token}")
    assert (await shown.get_json())["invitation"]["team"] == {"id": team.id, "name": "Acme"}
    resp = await browser.post(f"/api/invitations/{token}/accept", json={}, headers=cookie)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    body = await resp.get_json()
    assert body["role"] == "admin" and body["user"]["id"] == bob.id
    membership = await Membership.get(team_id=team.id, user_id=bob.id)
    assert membership.role == "admin"
    again = await browser.post(f"/api/invitations/{token}/accept", json={}, headers=cookie)
    assert again.status_code == 404
    assert (await browser.get(f"/api/invitations/{token}")).status_code == 404


async def test_a_new_address_sets_its_password_on_accept(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    token = (await (await invite(client, team, ann, "cat@example.com")).get_json())["invitation"][
        "token"
    ]
    browser = any_app.test_client()
    url = f"/api/invitations/{token}/accept"
    weak = await browser.post(url, json={"password": "short"})
    assert weak.status_code == 400 and (await weak.get_json())["field"] == "password"
    resp = await browser.post(url, json={"password": PASSWORD, "name": "Cat"})
    assert resp.status_code == 200
    assert "gateway_session=" in resp.headers["Set-Cookie"]  # signed in by the answer
    me = await (await browser.get("/api/auth/me")).get_json()
    assert me["user"]["email"] == "cat@example.com" and me["user"]["name"] == "Cat"
    assert me["teams"] == [{"id": team.id, "name": "Acme", "role": "member"}]
    await login(any_app.test_client(), "cat@example.com")  # the password works


async def test_tokens_are_stored_hashed_expire_and_can_be_revoked(any_app: Any, clock: Any) -> None:
    team, ann, client = await setup_team(any_app)
    first = (await (await invite(client, team, ann, "dan@example.com")).get_json())["invitation"]
    row = await Invitation.get(id=first["id"])
    assert first["token"] not in (row.token_hash, row.email)
    listed = await (await client.get(f"/api/teams/{team.id}/invitations", headers=ann)).get_json()
    assert [set(i) for i in listed["invitations"]] == [INVITE_KEYS]
    # A new invitation of the same address replaces the pending one.
    second = (await (await invite(client, team, ann, "dan@example.com")).get_json())["invitation"]
    browser = any_app.test_client()
    assert (await browser.get(f"/api/invitations/{first['token']}")).status_code == 404
    resp = await client.delete(f"/api/teams/{team.id}/invitations/{second['id']}", headers=ann)
    assert resp.status_code == 204
    resp = await browser.post(
        f"/api/invitations/{second['token']}/accept", json={"password": PASSWORD}
    )
    assert resp.status_code == 404
    third = (await (await invite(client, team, ann, "dan@example.com")).get_json())["invitation"]
    clock.advance(timedelta(days=7, seconds=1).total_seconds())
    resp = await browser.post(
        f"/api/invitations/{third['token']}/accept", json={"password": PASSWORD}
    )
    assert resp.status_code == 404
    assert not await User.filter(email="dan@example.com").exists()


async def test_two_accepts_at_once_join_once(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    token = (await (await invite(client, team, ann, "eve@example.com")).get_json())["invitation"][
        "token"
    ]
    url = f"/api/invitations/{token}/accept"
    results = await asyncio.gather(
        *(any_app.test_client().post(url, json={"password": PASSWORD}) for _ in range(3))
    )
    codes = sorted(r.status_code for r in results)
    assert codes[0] == 200 and all(c in (404, 409) for c in codes[1:]), codes
    assert await User.filter(email="eve@example.com").count() == 1
    assert await Membership.filter(team_id=team.id).count() == 2


async def test_who_may_invite_and_as_what(any_app: Any) -> None:
    from gateway.identity import service

    team, ann, client = await setup_team(any_app)
    admin = await make_user("adm@example.com")
    await service.add_member(team, admin, "admin")
    member = await make_user("mem@example.com")
    await service.add_member(team, member, "member")
    as_admin, as_member = await token_for(admin), await token_for(member)
    assert (await invite(client, team, as_admin, "x@example.com", role="owner")).status_code == 403
    assert (await invite(client, team, as_admin, "x@example.com")).status_code == 201
    assert (await invite(client, team, as_member, "y@example.com")).status_code == 403
    assert (await invite(client, team, ann, "z@example.com", role="owner")).status_code == 201
    assert (await invite(client, team, ann, "mem@example.com")).status_code == 409
    resp = await invite(client, team, ann, "not-an-address")
    assert (await resp.get_json())["field"] == "email"


async def test_member_listing_shows_only_what_a_teammate_needs(any_app: Any) -> None:
    team, ann, client = await setup_team(any_app)
    listed = await (await client.get(f"/api/teams/{team.id}/members", headers=ann)).get_json()
    (member,) = listed["members"]
    assert set(member) == {"user", "role", "joined_at"}
    assert set(member["user"]) == {"id", "email", "name"}


async def test_accept_is_rate_limited_and_refuses_other_sites(make_app: Any) -> None:
    app = await make_app()
    browser = app.test_client()
    codes = [
        (await browser.post(f"/api/invitations/inv_guess{n}/accept", json={})).status_code
        for n in range(11)
    ]
    assert codes == [404] * 10 + [429]
    other = app.test_client()
    resp = await other.post(
        "/api/invitations/inv_x/accept",
        json={"password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        **from_ip("10.9.9.9"),
    )
    assert resp.status_code == 403
