"""The jwt_auth plugin from the side of an app whose users log in elsewhere: it sends the
identity provider's JWT as a bearer token. HS256 tokens are made with joserfc; JWKS
tokens come from a fake provider on a real loopback server (tests/support/jwks_server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest

from gateway.clock import FrozenClock
from gateway.errors import StartupError
from gateway.identity.models import User
from tests.support.identity import make_team, make_user, token_for
from tests.support.jwks_server import AUDIENCE, ISSUER, JwksServer, claims_for, new_key, sign

SECRET = "s3cret-shared-with-the-idp-0123456789abcdef"
HS_CONFIG = {"hs256_secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE}


def hs_token(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return sign(claims, secret.encode(), {"alg": alg})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def jwt_app(make_app: Any, **cfg: Any) -> Any:
    return await make_app(plugins={"jwt_auth": {**HS_CONFIG, **cfg}})


def now(clock: FrozenClock) -> float:
    return clock.now().timestamp()


async def expect_401(client: Any, token: str, path: str = "/api/auth/me") -> str:
    resp = await client.get(path, headers=bearer(token))
    assert resp.status_code == 401, await resp.get_data(as_text=True)
    body = await resp.get_json()
    assert body["code"] == "UNAUTHORIZED"
    return body["error"]


# -- HS256 -------------------------------------------------------------------------


async def test_valid_token_maps_user_team_and_role(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    await make_user("ann@example.com")
    team = await make_team("Acme")
    token = hs_token(claims_for("Ann@Example.com", now=now(clock), team_id=team.id, role="admin"))
    resp = await client.get("/api/auth/me", headers=bearer(token))
    assert resp.status_code == 200
    body = await resp.get_json()
    assert body["via"] == "jwt" and body["user"]["email"] == "ann@example.com"
    assert body["teams"] == [{"id": team.id, "name": "Acme", "role": "admin"}]
    # The role comes from the token: an admin may rename the team.
    resp = await client.patch(
        f"/api/teams/{team.id}", json={"name": "Acme 2"}, headers=bearer(token)
    )
    assert resp.status_code == 200


async def test_token_for_another_team_cannot_act_on_this_one(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    await make_user("ann@example.com")
    team_a, team_b = await make_team("A"), await make_team("B")
    token_b = hs_token(
        claims_for("ann@example.com", now=now(clock), team_id=team_b.id, role="owner")
    )
    assert (await client.get(f"/api/teams/{team_b.id}", headers=bearer(token_b))).status_code == 200
    for method, kw in (("get", {}), ("patch", {"json": {"name": "pwned"}})):
        resp = await getattr(client, method)(
            f"/api/teams/{team_a.id}", headers=bearer(token_b), **kw
        )
        assert resp.status_code == 403
        assert (await resp.get_json())["code"] == "FORBIDDEN"
    resp = await client.post(
        f"/api/teams/{team_a.id}/phone-numbers",
        json={"number": "+14155550100"},
        headers=bearer(token_b),
    )
    assert resp.status_code == 403
    assert (await make_team_name(team_a.id)) == "A"


async def make_team_name(team_id: int) -> str:
    from gateway.identity.models import Team

    return (await Team.get(id=team_id)).name


async def test_member_role_cannot_do_admin_things_and_role_map_applies(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app, role_map={"manager": "admin"})
    client = app.test_client()
    await make_user("ann@example.com")
    team = await make_team("Acme")
    t = now(clock)
    member = hs_token(claims_for("ann@example.com", now=t, team_id=team.id, role="member"))
    manager = hs_token(claims_for("ann@example.com", now=t, team_id=team.id, role="manager"))
    unknown = hs_token(claims_for("ann@example.com", now=t, team_id=team.id, role="janitor"))
    rename = {"json": {"name": "x"}}
    assert (await client.get(f"/api/teams/{team.id}", headers=bearer(member))).status_code == 200
    assert (
        await client.patch(f"/api/teams/{team.id}", headers=bearer(member), **rename)
    ).status_code == 403
    assert (
        await client.patch(f"/api/teams/{team.id}", headers=bearer(manager), **rename)
    ).status_code == 200
    # A role we do not know grants nothing, not a default.
    assert (await client.get(f"/api/teams/{team.id}", headers=bearer(unknown))).status_code == 403


async def test_wrong_signature_is_401(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    await make_user("ann@example.com")
    claims = claims_for("ann@example.com", now=now(clock))
    message = await expect_401(
        client, hs_token(claims, secret="another-secret-of-enough-length-123456")
    )
    assert message == "Invalid token signature"
    # A genuine token whose payload was edited (e-mail swapped) fails the same way.
    header, _payload, signature = hs_token(claims).split(".")
    forged_payload = hs_token(claims_for("root@example.com", now=now(clock))).split(".")[1]
    assert (
        await expect_401(client, f"{header}.{forged_payload}.{signature}")
        == "Invalid token signature"
    )


async def test_wrong_audience_or_issuer_is_401(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    await make_user("ann@example.com")
    t = now(clock)
    assert "aud" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, aud="other-app"))
    )
    assert "aud" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, aud=None))
    )
    assert "iss" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, iss="https://evil/"))
    )
    ok = hs_token(claims_for("ann@example.com", now=t, aud=["other-app", AUDIENCE]))
    assert (await client.get("/api/auth/me", headers=bearer(ok))).status_code == 200


async def test_expired_token_is_401_by_the_gateway_clock(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app, leeway_seconds=30)
    client = app.test_client()
    await make_user("ann@example.com")
    token = hs_token(claims_for("ann@example.com", now=now(clock)))  # exp = now + 3600
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
    clock.advance(3600 + 29)  # inside the leeway
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
    clock.advance(1)  # RFC 7519 4.1.4: expired "on or after" exp (here exp + leeway)
    assert await expect_401(client, token) == "Token has expired"


async def test_not_yet_valid_and_no_expiry_are_401(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app, leeway_seconds=0)
    client = app.test_client()
    await make_user("ann@example.com")
    t = now(clock)
    await expect_401(client, hs_token(claims_for("ann@example.com", now=t, nbf=int(t) + 60)))
    await expect_401(client, hs_token(claims_for("ann@example.com", now=t, iat=int(t) + 60)))
    assert "exp" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, exp=None))
    )


async def test_unsigned_and_wrong_algorithm_tokens_are_401(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    await make_user("ann@example.com")

    claims = claims_for("ann@example.com", now=now(clock))
    assert (
        await expect_401(client, f"{b64({'alg': 'none'})}.{b64(claims)}.")
        == "Token algorithm not accepted"
    )
    assert await expect_401(client, hs_token(claims, alg="HS512")) == "Token algorithm not accepted"
    assert await expect_401(client, "not.a.jwt") == "Malformed token"


async def test_unknown_user_and_user_creation(make_app: Any, clock: FrozenClock) -> None:
    app = await jwt_app(make_app)
    token = hs_token(claims_for("new@example.com", now=now(clock), name="New Person"))
    assert await expect_401(app.test_client(), token) == "Unknown user"
    assert await User.filter(email="new@example.com").count() == 0

    app = await jwt_app(make_app, create_users=True)
    client = app.test_client()
    for _ in range(2):
        assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
    user = await User.get(email="new@example.com")
    assert user.name == "New Person" and user.password_hash is None and not user.is_super_admin


async def test_deactivated_user_and_unverified_email_are_401(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app, create_users=True)
    client = app.test_client()
    user = await make_user("ann@example.com")
    t = now(clock)
    assert "verified" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, email_verified=False))
    )
    assert "e-mail" in await expect_401(
        client, hs_token(claims_for("ann@example.com", now=t, email=None))
    )
    user.is_active = False
    await user.save()
    assert (
        await expect_401(client, hs_token(claims_for("ann@example.com", now=t)))
        == "User is deactivated"
    )


async def test_super_admin_only_through_the_configured_claim(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app, super_admin_claim="gw_super")
    client = app.test_client()
    await make_user("ann@example.com")
    t = now(clock)
    plain = hs_token(claims_for("ann@example.com", now=t, gw_super="true"))  # a string is not True
    root = hs_token(claims_for("ann@example.com", now=t, gw_super=True))
    assert (await client.get("/api/plugins", headers=bearer(plain))).status_code == 403
    assert (await client.get("/api/plugins", headers=bearer(root))).status_code == 200
    # Without the setting, the same claim means nothing.
    other = await jwt_app(make_app)
    assert (await other.test_client().get("/api/plugins", headers=bearer(root))).status_code == 403


async def test_api_tokens_and_other_bearers_are_left_alone(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await jwt_app(make_app)
    client = app.test_client()
    user = await make_user("ann@example.com")
    resp = await client.get("/api/auth/me", headers=await token_for(user))
    assert resp.status_code == 200 and (await resp.get_json())["via"] == "token"
    resp = await client.get("/api/auth/me", headers=bearer("opaque-token-without-dots"))
    assert resp.status_code == 401


async def test_secrets_and_tokens_stay_out_of_logs_and_bodies(
    make_app: Any, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await jwt_app(make_app, create_users=True)
    client = app.test_client()
    good = hs_token(claims_for("ann@example.com", now=now(clock)))
    bad = hs_token(claims_for("ann@example.com", now=now(clock)), secret="x" * 40)
    await client.get("/api/auth/me", headers=bearer(good))
    resp = await client.get("/api/auth/me", headers=bearer(bad))
    text = caplog.text + await resp.get_data(as_text=True)
    assert SECRET not in text and good not in text and bad not in text
    assert good.split(".")[2] not in text


# -- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"issuer": ISSUER, "audience": AUDIENCE}, "hs256_secret"),
        ({**HS_CONFIG, "jwks_url": "https://idp.example.com/jwks"}, "hs256_secret"),
        ({**HS_CONFIG, "hs256_secret": "short"}, "hs256_secret"),
        ({"hs256_secret": SECRET, "issuer": ISSUER}, "audience"),
        ({**HS_CONFIG, "algorithms": ["RS256"]}, "algorithms"),
        (
            {"jwks_url": "http://idp.example.com/jwks", "issuer": ISSUER, "audience": "a"},
            "jwks_url",
        ),
        ({"jwks_url": "https://idp.example.com/jwks", "audience": "a"}, "issuer"),
        (
            {
                "jwks_url": "https://idp.example.com/jwks",
                "issuer": ISSUER,
                "audience": "a",
                "algorithms": ["HS256"],
            },
            "algorithms",
        ),
        ({**HS_CONFIG, "role_map": {"boss": "god"}}, "role_map.boss"),
        ({**HS_CONFIG, "leeway_seconds": 3600}, "leeway_seconds"),
        ({**HS_CONFIG, "hs256_secret": {"env": "GW_TEST_UNSET_JWT_SECRET"}}, "hs256_secret"),
    ],
)
async def test_bad_settings_stop_startup_naming_the_key(make_app: Any, cfg: dict, key: str) -> None:
    with pytest.raises(StartupError) as info:
        await make_app(plugins={"jwt_auth": cfg})
    message = str(info.value)
    assert message.startswith(f"plugin 'jwt_auth': key '{key}'"), message
    assert SECRET not in message


async def test_installed_without_configuration_only_warns(
    make_app: Any, clock: FrozenClock
) -> None:
    app = await make_app()  # no plugins table at all: every installed plugin is on
    assert any("jwt_auth" in w for w in app.extensions["gateway"].warnings)
    await make_user("ann@example.com")
    token = hs_token(claims_for("ann@example.com", now=now(clock)))
    assert (await app.test_client().get("/api/auth/me", headers=bearer(token))).status_code == 401


# -- JWKS --------------------------------------------------------------------------


async def jwks_app(make_app: Any, idp: JwksServer, **cfg: Any) -> Any:
    settings = {"jwks_url": idp.url, "issuer": ISSUER, "audience": AUDIENCE, **cfg}
    return await make_app(plugins={"jwt_auth": settings})


async def test_jwks_token_is_accepted_and_keys_are_cached(
    make_app: Any, clock: FrozenClock
) -> None:
    async with JwksServer() as idp:
        app = await jwks_app(make_app, idp, jwks_cache_seconds=300)
        client = app.test_client()
        await make_user("ann@example.com")
        team = await make_team("Acme")
        token = idp.token(
            claims_for("ann@example.com", now=now(clock), team_id=team.id, role="owner")
        )
        for _ in range(3):
            resp = await client.get(f"/api/teams/{team.id}", headers=bearer(token))
            assert resp.status_code == 200
        assert idp.requests == 1
        clock.advance(300)  # the cache expires on the gateway clock
        token = idp.token(claims_for("ann@example.com", now=now(clock), team_id=team.id))
        assert (await client.get(f"/api/teams/{team.id}", headers=bearer(token))).status_code == 200
        assert idp.requests == 2


async def test_jwks_rotation_refetches_once_per_interval(make_app: Any, clock: FrozenClock) -> None:
    async with JwksServer() as idp:
        app = await jwks_app(make_app, idp, jwks_min_refresh_seconds=30)
        client = app.test_client()
        await make_user("ann@example.com")
        t = now(clock)
        assert (
            await client.get(
                "/api/auth/me", headers=bearer(idp.token(claims_for("ann@example.com", now=t)))
            )
        ).status_code == 200
        assert idp.requests == 1
        clock.advance(31)
        idp.rotate("key-2")  # the provider starts signing with a new key
        fresh = idp.token(claims_for("ann@example.com", now=now(clock)))
        assert (await client.get("/api/auth/me", headers=bearer(fresh))).status_code == 200
        assert idp.requests == 2
        # Made-up kids cannot make the gateway hammer the provider.
        for kid in ("k-a", "k-b", "k-c"):
            claims = claims_for("ann@example.com", now=now(clock))
            forged = idp.token(claims, key=new_key(kid))
            assert await expect_401(client, forged) == "Token signed with an unknown key"
        assert idp.requests == 2


async def test_jwks_signature_by_a_foreign_key_with_a_known_kid_is_401(
    make_app: Any, clock: FrozenClock
) -> None:
    async with JwksServer() as idp:
        app = await jwks_app(make_app, idp)
        client = app.test_client()
        await make_user("ann@example.com")
        impostor = JwksServer()  # its own key, but it claims the provider's kid
        forged = impostor.token(claims_for("ann@example.com", now=now(clock)), kid="key-1")
        assert await expect_401(client, forged) == "Invalid token signature"


async def test_hs256_token_signed_with_the_public_key_is_401(
    make_app: Any, clock: FrozenClock
) -> None:
    """The algorithm-confusion attack: the JWKS is public, so an HS256 token keyed with
    the provider's public key must not pass."""
    async with JwksServer() as idp:
        app = await jwks_app(make_app, idp)
        await make_user("ann@example.com")
        public_pem = idp.keys[0].as_pem(private=False)
        # joserfc itself refuses to use a PEM as an HMAC key, so forge it by hand.
        header = b64({"alg": "HS256", "typ": "JWT", "kid": "key-1"})
        payload = b64(claims_for("ann@example.com", now=now(clock)))
        mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        assert await expect_401(app.test_client(), forged) == "Token algorithm not accepted"


async def test_jwks_outage(make_app: Any, clock: FrozenClock) -> None:
    async with JwksServer() as idp:
        idp.status = 503
        app = await jwks_app(make_app, idp, jwks_min_refresh_seconds=0)
        client = app.test_client()
        await make_user("ann@example.com")
        token = idp.token(claims_for("ann@example.com", now=now(clock)))
        resp = await client.get("/api/auth/me", headers=bearer(token))
        assert resp.status_code == 503
        assert (await resp.get_json())["code"] == "SERVICE_UNAVAILABLE"
        idp.status = 200
        assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
        # Once keys are known, a provider outage does not log anybody out.
        idp.status = 500
        clock.advance(301)
        token = idp.token(claims_for("ann@example.com", now=now(clock)))
        assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
        assert idp.requests == 3


async def test_one_request_fetches_the_key_set_at_most_once(
    make_app: Any, clock: FrozenClock
) -> None:
    async with JwksServer() as idp:
        app = await jwks_app(make_app, idp, jwks_min_refresh_seconds=0)
        await make_user("ann@example.com")
        forged = idp.token(claims_for("ann@example.com", now=now(clock)), key=new_key("zzz"))
        assert await expect_401(app.test_client(), forged) == "Token signed with an unknown key"
        assert idp.requests == 1
