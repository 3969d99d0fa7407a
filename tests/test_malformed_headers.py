"""Headers any client can write, malformed on purpose: the answer is the route's own
answer (or a 4xx), never a 500, and a write the route made is answered as made."""

from __future__ import annotations

from typing import Any

from gateway.cors import normalize_origin
from gateway.identity.models import PhoneNumber
from tests.support.identity import login, make_team, make_user, token_for

BAD_ORIGINS = (
    "http://x:abc",
    "http://x:99999",
    "http://x:-1",
    "http://[::1",
    "http://[zz]",
    "null",
    "\u00e9://x",
    "",
)


def test_normalize_origin_never_raises() -> None:
    for origin in BAD_ORIGINS:
        assert normalize_origin(origin) is None


async def test_malformed_origin_gets_the_routes_own_answer(make_app: Any) -> None:
    app = await make_app(cors_origins=["https://app.renchi.test"])
    owner = await make_user("ann@example.com")
    team = await make_team("Acme", owner)
    bearer = await token_for(owner)
    client = app.test_client()
    for n, origin in enumerate(BAD_ORIGINS):
        headers = {"Origin": origin}
        assert (await client.get("/healthz", headers=headers)).status_code == 200, origin
        resp = await client.post(
            "/api/auth/login",
            json={"email": f"u{n}@example.com", "password": "wrong password!"},
            headers=headers,
        )
        assert resp.status_code in (401, 403), origin
        resp = await client.options(
            "/api/teams/1", headers={**headers, "Access-Control-Request-Method": "GET"}
        )
        assert resp.status_code == 403, origin
        # A token-authenticated write with the bad Origin: stored, and answered 201.
        number = f"+1415555{n:04d}"
        resp = await client.post(
            f"/api/teams/{team.id}/phone-numbers",
            json={"number": number},
            headers={**bearer, **headers},
        )
        assert resp.status_code == 201, (origin, await resp.get_data(as_text=True))
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert await PhoneNumber.filter(number=number).count() == 1


async def test_cookie_write_with_malformed_origin_is_refused_and_stores_nothing(
    make_app: Any,
) -> None:
    app = await make_app()
    owner = await make_user("ann@example.com")
    team = await make_team("Acme", owner)
    client = app.test_client()
    cookie = await login(client, "ann@example.com")
    resp = await client.post(
        f"/api/teams/{team.id}/phone-numbers",
        json={"number": "+14155550199"},
        headers={**cookie, "Origin": "http://gateway.test:abc"},
    )
    assert resp.status_code == 403
    assert await PhoneNumber.all().count() == 0
