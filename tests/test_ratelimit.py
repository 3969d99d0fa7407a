"""Rate limits as a client sees them: 429 RATE_LIMITED with Retry-After, per client,
shared across replicas through Redis. Each test uses fresh scopes/keys instead of
waiting for a window to pass."""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, request

from gateway import ratelimit
from gateway.ratelimit import rate_limited
from hookspecs import hookimpl
from tests.conftest import REDIS_URL
from tests.support.identity import from_ip


def limited_plugin(scope: str, limit: str = "3/minute") -> Any:
    bp = Blueprint(f"rl_{scope}", __name__)

    @bp.post("/t/hit")
    async def do_hit() -> Any:
        from quart import current_app

        await ratelimit.hit(current_app, scope, ratelimit.client_key(request), limit)
        return {"ok": True}

    @bp.get("/t/decorated")
    @rate_limited(scope + "-dec", limit)
    async def decorated() -> Any:
        return {"ok": True}

    @bp.get("/t/whoami")
    async def whoami() -> Any:
        return {"client": ratelimit.client_key()}

    class Plugin:
        @hookimpl
        def register_routes(self, app: Any, config: Any) -> Any:
            return bp

    return Plugin()


async def test_over_the_limit_is_429_with_retry_after(make_app: Any) -> None:
    scope = uuid.uuid4().hex
    app = await make_app(extra_plugins=[("rl", limited_plugin(scope))])
    client = app.test_client()
    for _ in range(3):
        assert (await client.post("/t/hit", **from_ip("10.0.0.1"))).status_code == 200
    resp = await client.post("/t/hit", **from_ip("10.0.0.1"))
    assert resp.status_code == 429
    assert await resp.get_json() == {"error": "Too many requests", "code": "RATE_LIMITED"}
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another client is counted separately.
    assert (await client.post("/t/hit", **from_ip("10.0.0.2"))).status_code == 200


async def test_decorator_counts_per_client(make_app: Any) -> None:
    scope = uuid.uuid4().hex
    app = await make_app(extra_plugins=[("rl", limited_plugin(scope, "2/minute"))])
    client = app.test_client()
    codes = [
        (await client.get("/t/decorated", **from_ip("10.1.0.1"))).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


async def test_forwarded_for_ignored_unless_proxies_are_trusted(make_app: Any) -> None:
    app = await make_app(extra_plugins=[("rl", limited_plugin("x"))])
    client = app.test_client()
    resp = await client.get(
        "/t/whoami", headers={"X-Forwarded-For": "6.6.6.6"}, **from_ip("10.0.0.9")
    )
    assert (await resp.get_json())["client"] == "10.0.0.9"


async def test_forwarded_for_with_one_trusted_proxy(make_app: Any) -> None:
    app = await make_app(extra_plugins=[("rl", limited_plugin("x"))], trusted_proxy_hops=1)
    client = app.test_client()
    # The client forged the first entry; the proxy appended the real address.
    resp = await client.get(
        "/t/whoami", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}, **from_ip("10.0.0.9")
    )
    assert (await resp.get_json())["client"] == "203.0.113.7"


async def test_limit_shared_by_two_instances_through_redis(make_app: Any) -> None:
    scope = uuid.uuid4().hex  # Redis is shared with other test runs: a fresh scope
    plugin = limited_plugin(scope)
    one = await make_app(extra_plugins=[("rl", plugin)], rate_limit_storage=REDIS_URL)
    two = await make_app(extra_plugins=[("rl", plugin)], rate_limit_storage=REDIS_URL)
    c1, c2 = one.test_client(), two.test_client()
    assert (await c1.post("/t/hit", **from_ip("10.2.0.1"))).status_code == 200
    assert (await c2.post("/t/hit", **from_ip("10.2.0.1"))).status_code == 200
    assert (await c1.post("/t/hit", **from_ip("10.2.0.1"))).status_code == 200
    resp = await c2.post("/t/hit", **from_ip("10.2.0.1"))
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1


async def test_memory_limits_are_per_instance(make_app: Any) -> None:
    scope = uuid.uuid4().hex
    plugin = limited_plugin(scope, "1/minute")
    one = await make_app(extra_plugins=[("rl", plugin)])
    two = await make_app(extra_plugins=[("rl", plugin)])
    assert (await one.test_client().post("/t/hit")).status_code == 200
    assert (await one.test_client().post("/t/hit")).status_code == 429
    assert (await two.test_client().post("/t/hit")).status_code == 200


def test_identifier_hides_the_key() -> None:
    ident = ratelimit._identifier("login", "alice@example.com")
    assert "alice" not in ident and len(ident) == 32


async def test_unreachable_redis_fails_closed_with_503(make_app: Any) -> None:
    app = await make_app(
        extra_plugins=[("rl", limited_plugin("down"))], rate_limit_storage="redis://127.0.0.1:1/0"
    )
    resp = await app.test_client().post("/t/hit")
    assert resp.status_code == 503
    assert await resp.get_json() == {
        "error": "Rate limiter unavailable",
        "code": "SERVICE_UNAVAILABLE",
    }


async def test_forwarded_for_over_several_header_lines(make_app: Any) -> None:
    """A proxy that adds its own header line (instead of appending to the client's)
    puts the real address on the last line: that line is what counts."""
    from werkzeug.datastructures import Headers

    app = await make_app(extra_plugins=[("rl", limited_plugin("x"))], trusted_proxy_hops=1)
    client = app.test_client()
    headers = Headers([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.7")])
    resp = await client.get("/t/whoami", headers=headers, **from_ip("10.0.0.9"))
    assert (await resp.get_json())["client"] == "203.0.113.7"
    headers = Headers(
        [("X-Forwarded-For", "1.1.1.1, 6.6.6.6"), ("X-Forwarded-For", "203.0.113.8, 10.0.0.1")]
    )
    app2 = await make_app(extra_plugins=[("rl2", limited_plugin("y"))], trusted_proxy_hops=2)
    resp = await app2.test_client().get("/t/whoami", headers=headers)
    assert (await resp.get_json())["client"] == "203.0.113.8"


async def test_forged_first_line_does_not_escape_the_login_limit(make_app: Any) -> None:
    """The attack: a new forged first line per attempt, the proxy's line last."""
    from werkzeug.datastructures import Headers

    app = await make_app(trusted_proxy_hops=1)
    client = app.test_client()
    codes = []
    for n in range(12):
        headers = Headers(
            [("X-Forwarded-For", f"198.51.100.{n}"), ("X-Forwarded-For", "203.0.113.50")]
        )
        # No password: answered 400 without hashing anything, but counted all the same
        # (the per-client limit is hit before the body is read).
        resp = await client.post(
            "/api/auth/login", json={"email": f"user{n}@example.com"}, headers=headers
        )
        codes.append(resp.status_code)
    assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]
    codes = []
    for n in range(7):
        headers = Headers(
            [("X-Forwarded-For", f"198.51.100.{n}"), ("X-Forwarded-For", "203.0.113.51")]
        )
        resp = await client.post(
            "/api/setup-super-admin",
            json={"email": "x@example.com"},
            headers=Headers([*headers.items(), ("X-Setup-Token", f"guess-{n}")]),
        )
        codes.append(resp.status_code)
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
