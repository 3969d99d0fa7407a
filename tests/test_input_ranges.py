"""Values no column can hold, sent on purpose, on SQLite and PostgreSQL: ids past 32 and
64 bits (paths, cursors, filters, ``X-Team-Id``, a JWT's team claim), filters longer
than their column, a lone surrogate or a NUL in JSON (the unauthenticated login too).
Every one is ``400 VALIDATION_ERROR``; none reaches the database, and the value is not
written to the log."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.identity import make_team, make_user, token_for
from tests.support.jwks_server import claims_for, sign

BIG64 = str(2**64 + 7)  # past int8
BIG32 = str(2**31)  # past int4 (team, user, phone-number ids on PostgreSQL)
HUGE = "9" * 40
JWT_SECRET = "s3cret-shared-with-the-idp-0123456789abcdef"


async def assert_400(resp: Any, field: str | None = None) -> None:
    assert resp.status_code == 400, (resp.status_code, await resp.get_data(as_text=True))
    body = await resp.get_json()
    assert body["code"] == "VALIDATION_ERROR", body
    if field is not None:
        assert body.get("field") == field, body


@pytest.fixture
async def world(make_app: Any, db_kind: str) -> Any:
    from tests.support.jwks_server import AUDIENCE, ISSUER

    app = await make_app(
        db=db_kind,
        plugins={"jwt_auth": {"hs256_secret": JWT_SECRET, "issuer": ISSUER, "audience": AUDIENCE}},
    )
    root = await make_user("root@example.com", super_admin=True)
    team = await make_team("Acme", root)
    return app, team, await token_for(root)


async def test_ids_past_the_column_range_are_400(world: Any) -> None:
    app, team, root = world
    client = app.test_client()
    for big in (BIG32, BIG64, HUGE):
        cases = [
            ("GET", f"/api/teams/{big}", "team_id"),
            ("PATCH", f"/api/teams/{team.id}/members/{big}", "user_id"),
            ("DELETE", f"/api/teams/{team.id}/phone-numbers/{big}", "number_id"),
            ("GET", f"/api/events?team_id={big}", "team_id"),
            ("GET", f"/api/jobs?team_id={big}", "team_id"),
        ]
        for method, path, field in cases:
            resp = await client.open(path, method=method, headers=root, json={"role": "admin"})
            await assert_400(resp, field)
        resp = await client.get("/api/integrations/status", headers={**root, "X-Team-Id": big})
        await assert_400(resp, "team_id")
    # Events and jobs have 64-bit ids: 2**31 is fine there (simply not found), 2**64 not.
    for path in ("/api/events/", "/api/jobs/"):
        assert (await client.get(path + BIG32, headers=root)).status_code == 404
        await assert_400(
            await client.get(path + BIG64, headers=root), path.split("/")[2][:-1] + "_id"
        )
    for query in ("cursor", "event_id"):
        await assert_400(await client.get(f"/api/jobs?{query}={BIG64}", headers=root), query)
    await assert_400(await client.get(f"/api/events?cursor={BIG64}", headers=root), "cursor")
    await assert_400(await client.get("/api/events?cursor=-5", headers=root), "cursor")
    await assert_400(await client.post(f"/api/jobs/{BIG64}/retry", headers=root), "job_id")


async def test_a_jwt_team_claim_past_the_range_is_400(world: Any, clock: Any) -> None:
    app, _team, _root = world
    await make_user("ann@example.com")
    client = app.test_client()
    now = clock.now().timestamp()
    for big in (2**31, 2**64):
        token = sign(
            claims_for("ann@example.com", now=now, team_id=big, role="admin"),
            JWT_SECRET.encode(),
            {"alg": "HS256"},
        )
        for path in ("/api/auth/me", "/api/integrations/status"):
            resp = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            await assert_400(resp, "team_id")


async def test_filters_longer_than_their_column_are_400_and_stay_out_of_the_log(
    world: Any, caplog: Any
) -> None:
    app, _team, root = world
    client = app.test_client()
    marker = "Z" * 60_000
    with caplog.at_level(logging.INFO):
        for path in (
            f"/api/jobs?status={marker}",
            f"/api/jobs?handler={marker}",
            f"/api/events?type={marker}",
            f"/api/events?source={marker}",
        ):
            await assert_400(await client.get(path, headers=root))
    logged = "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "ZZZZZZZZZZ" not in logged
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


BAD_JSON = {
    "lone surrogate": b'{"name": "Acme \\ud800"}',
    "surrogate in a key": b'{"\\udfff": 1, "name": "Acme"}',
    "NUL": b'{"name": "Acme\\u0000"}',
    "nested NUL": b'{"name": "Acme", "x": [{"y": "\\u0000"}]}',
    "not UTF-8": b'{"name": "\xff\xfe"}',
    "deep": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


async def test_json_with_unstorable_strings_is_400(world: Any, caplog: Any) -> None:
    app, team, root = world
    client = app.test_client()
    headers = {**root, "Content-Type": "application/json"}
    with caplog.at_level(logging.INFO):
        for label, body in BAD_JSON.items():
            resp = await client.post("/api/teams", data=body, headers=headers)
            await assert_400(resp, "body")
            resp = await client.patch(f"/api/teams/{team.id}", data=body, headers=headers)
            await assert_400(resp, "body"), label
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_anonymous_login_with_nul_or_surrogate_is_400(world: Any) -> None:
    app, _team, _root = world
    client = app.test_client()
    for body in (
        b'{"email": "root\\u0000@example.com", "password": "long enough password"}',
        b'{"email": "root\\ud800@example.com", "password": "long enough password"}',
        b'{"email": "root@example.com", "password": "long enough \\u0000"}',
    ):
        resp = await client.post(
            "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
        )
        await assert_400(resp, "body")


async def test_nul_in_the_url_is_400(world: Any) -> None:
    app, team, root = world
    client = app.test_client()
    await assert_400(await client.get("/api/events?type=a%00b", headers=root), "url")
    await assert_400(await client.get(f"/api/teams/{team.id}%00", headers=root), "url")
