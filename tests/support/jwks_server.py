"""A fake identity provider on a real loopback HTTP server: it publishes a JWKS at
``/.well-known/jwks.json`` (RFC 7517) and signs RS256 tokens with the matching private
keys, generated with joserfc. Keys can be rotated and the endpoint can be made
to fail, to test caching and refetching."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from gateway.testing import serve

ISSUER = "https://idp.example.com/"
AUDIENCE = "renchi-gateway"
JWKS_PATH = "/.well-known/jwks.json"


def new_key(kid: str) -> RSAKey:
    """A fresh RSA signing key (a JWK with ``kid``)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def sign(claims: dict[str, Any], key: Any, header: dict[str, Any]) -> str:
    """A JWT with exactly ``header`` (its ``alg`` allowed for this one token); ``key`` is
    a JWK or the raw bytes of an HMAC secret."""
    if isinstance(key, bytes | str):
        key = OctKey.import_key(key)
    return jwt.encode(header, dict(claims), key, algorithms=[header["alg"]])


def claims_for(
    who: str, *, now: float, team_id: int | None = None, role: str = "admin", **extra: Any
) -> dict[str, Any]:
    """Claims that pass (issuer, audience, an hour of life from ``now``, the gateway
    clock's time) plus ``extra``; an ``extra`` value of None removes that claim."""
    now = int(now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"user|{who}",
        "email": who,
        "iat": now,
        "exp": now + 3600,
    }
    if team_id is not None:
        claims["team_id"] = team_id
        claims["role"] = role
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


@dataclass
class JwksServer:
    """``async with JwksServer() as idp: idp.url, idp.token(claims)``."""

    keys: list[Any] = field(default_factory=list)
    status: int = 200
    requests: int = 0
    _runner: web.AppRunner | None = None
    url: str = ""

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys.append(new_key("key-1"))

    def rotate(self, kid: str, keep_old: bool = True) -> Any:
        """Publish a new signing key (first, so :meth:`token` uses it)."""
        key = new_key(kid)
        self.keys = [key, *self.keys] if keep_old else [key]
        return key

    def token(self, claims: dict[str, Any], key: Any = None, **header: Any) -> str:
        key = key or self.keys[0]
        return sign(claims, key, {"alg": "RS256", "kid": key.kid, **header})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keys]}

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        return web.Response(body=json.dumps(self.jwks()), content_type="application/json")

    async def __aenter__(self) -> JwksServer:
        app = web.Application()
        app.router.add_get(JWKS_PATH, self._handle)
        self._runner, port = await serve(app, access_log=None)
        self.url = f"http://127.0.0.1:{port}{JWKS_PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
