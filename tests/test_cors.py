"""CORS as a browser sees it: same-origin only by default; configured origins may call
with credentials and get their preflight answered; foreign origins get nothing."""

from __future__ import annotations

from typing import Any

from gateway.cors import normalize_origin
from tests.support.identity import login, make_team, make_user

ALLOWED = "https://app.renchi.test"


def preflight(origin: str, method: str = "PATCH", headers: str = "content-type") -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_from_allowed_origin(make_app: Any) -> None:
    app = await make_app(cors_origins=[ALLOWED + "/"])  # trailing slash tolerated
    resp = await app.test_client().options(
        "/api/teams/1", headers=preflight(ALLOWED, headers="Content-Type, X-Team-Id")
    )
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "content-type, x-team-id"
    assert "Origin" in resp.headers["Vary"]


async def test_preflight_from_foreign_origin_is_refused(make_app: Any) -> None:
    app = await make_app(cors_origins=[ALLOWED])
    client = app.test_client()
    for origin in (
        "https://evil.example",
        "http://app.renchi.test",
        "https://app.renchi.test.evil",
    ):
        resp = await client.options("/api/teams/1", headers=preflight(origin))
        assert resp.status_code == 403, origin
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert (await resp.get_json())["code"] == "FORBIDDEN"


async def test_preflight_with_unlisted_header_is_refused(make_app: Any) -> None:
    app = await make_app(cors_origins=[ALLOWED])
    resp = await app.test_client().options(
        "/api/teams/1", headers=preflight(ALLOWED, headers="x-evil")
    )
    assert resp.status_code == 403


async def test_no_origins_configured_means_same_origin_only(make_app: Any) -> None:
    app = await make_app()
    client = app.test_client()
    resp = await client.options("/api/teams/1", headers=preflight("https://gateway.test"))
    # A browser never preflights same-origin requests; nobody else is allowed.
    assert resp.status_code == 403
    resp = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert resp.status_code == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_credentialed_request_from_allowed_origin(make_app: Any, db_kind: str) -> None:
    allowed_app = await make_app(db=db_kind, cors_origins=[ALLOWED])
    user = await make_user("ann@example.com")
    team = await make_team("Acme", user)
    client = allowed_app.test_client()
    cookie = await login(client, "ann@example.com")
    resp = await client.patch(
        f"/api/teams/{team.id}", json={"name": "Acme 2"}, headers={**cookie, "Origin": ALLOWED}
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    # Errors carry the headers too, so the browser app can read {"error", "code"}.
    resp = await client.get("/api/teams/999999", headers={**cookie, "Origin": ALLOWED})
    assert resp.status_code == 403
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    # A foreign origin's write with the same cookie is refused and gets no CORS headers.
    resp = await client.patch(
        f"/api/teams/{team.id}",
        json={"name": "pwned"},
        headers={**cookie, "Origin": "https://evil.example"},
    )
    assert resp.status_code == 403
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_normalize_origin() -> None:
    assert normalize_origin("HTTPS://App.Example.com:443/") == "https://app.example.com"
    assert normalize_origin("http://localhost:3000") == "http://localhost:3000"
    assert normalize_origin("null") is None
    assert normalize_origin("ftp://x") is None
