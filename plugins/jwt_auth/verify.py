"""From a bearer JWT to a :class:`Principal`: signature, registered claims, then the
configured claims mapped onto a user, a team and a role."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import OctKey

from gateway.auth import TOKEN_PREFIX, Principal
from gateway.clock import Clock
from gateway.errors import Conflict, GatewayError, Unauthorized, ValidationError
from gateway.identity import User, create_user
from gateway.identity import validation as v
from plugins.jwt_auth.keys import JwksCache
from plugins.jwt_auth.settings import JwtSettings

log = logging.getLogger("gateway.plugins.jwt_auth")

MAX_TOKEN_LENGTH = 16 * 1024


def looks_like_jwt(token: str) -> bool:
    """Ours to judge: three dot-separated parts and not one of the gateway's API tokens.
    Anything else is left to the other authenticators."""
    return not token.startswith(TOKEN_PREFIX) and token.count(".") == 2


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        raise Unauthorized("Malformed token") from None
    if not isinstance(header, dict):
        raise Unauthorized("Malformed token")
    return header


class TokenVerifier:
    """Checks tokens for one app; built at startup with the validated settings."""

    def __init__(self, cfg: JwtSettings, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.jwks = (
            JwksCache(cfg.jwks_url, clock, cfg.jwks_cache_seconds, cfg.jwks_min_refresh_seconds)
            if cfg.jwks_url
            else None
        )
        self.secret = (
            OctKey.import_key(cfg.hs256_secret.get_secret_value()) if cfg.hs256_secret else None
        )
        claims: dict[str, Any] = {
            "exp": {"essential": True},  # a token that never expires is not accepted
            "aud": {"essential": True, "values": cfg.audiences},
        }
        if cfg.issuer:
            claims["iss"] = {"essential": True, "value": cfg.issuer}
        self.claims_options = claims

    def _claims_registry(self) -> jwt.JWTClaimsRegistry:
        # "now" is the gateway clock's, so tests (and the leeway) follow FrozenClock.
        return jwt.JWTClaimsRegistry(
            now=int(self.clock.timestamp()), leeway=self.cfg.leeway_seconds, **self.claims_options
        )

    async def claims(self, token: str, http: aiohttp.ClientSession | None) -> dict[str, Any]:
        """The verified claims.

        :raises Unauthorized: bad signature, algorithm, issuer, audience or times.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("Malformed token")
        header = _header(token)
        if header.get("alg") not in (self.cfg.algorithms or ()):
            raise Unauthorized("Token algorithm not accepted")
        if self.jwks is not None:
            if http is None:
                raise GatewayError("HTTP client is not open")
            kid = header.get("kid")
            key = await self.jwks.key_for(http, kid if isinstance(kid, str) else None)
        else:
            if self.secret is None:  # the settings require a JWKS URL or a secret
                raise GatewayError("JWT verification key is not configured")
            key = self.secret
        try:
            # The algorithm list is the configured family only (see settings.py), so a
            # token "signed" with HS256 over a provider's public key never verifies.
            verified = jwt.decode(token, key, algorithms=self.cfg.algorithms)
            claims = verified.claims
            self._claims_registry().validate(claims)
        except BadSignatureError:
            raise Unauthorized("Invalid token signature") from None
        except ExpiredTokenError:
            raise Unauthorized("Token has expired") from None
        except (InvalidClaimError, MissingClaimError) as exc:
            # "Invalid claim: 'aud'" / "Missing claim: 'exp'": names the claim, never its
            # value.
            raise Unauthorized(f"Token rejected: {exc.description}") from None
        except JoseError as exc:
            raise Unauthorized(f"Invalid token ({exc.error})") from None
        except ValueError:  # a key that does not fit the algorithm, a payload not JSON
            raise Unauthorized("Invalid token") from None
        return dict(claims)

    def _team_roles(self, claims: dict[str, Any]) -> dict[int, str]:
        raw = claims.get(self.cfg.team_claim)
        if raw is None:
            return {}
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise Unauthorized(f"Token claim '{self.cfg.team_claim}' is not a team id")
        try:
            team_id = int(raw)
        except ValueError:
            raise Unauthorized(f"Token claim '{self.cfg.team_claim}' is not a team id") from None
        role = self.cfg.role_for(claims.get(self.cfg.role_claim))
        return {team_id: role} if role else {}

    async def _user(self, claims: dict[str, Any]) -> User:
        try:
            email = v.email(claims.get(self.cfg.email_claim))
        except ValidationError:
            raise Unauthorized(f"Token claim '{self.cfg.email_claim}' is not an e-mail") from None
        # Users are found by e-mail, so an address the provider has not verified must not
        # open an existing account.
        if claims.get("email_verified") is False:
            raise Unauthorized("Token e-mail address is not verified")
        user = await User.get_or_none(email=email)
        if user is None and self.cfg.create_users:
            raw_name = claims.get("name")
            name = raw_name if isinstance(raw_name, str) else ""
            try:
                user = await create_user(email, name=name[:200])
                log.info("created user %s on first sight of a JWT", user.id)
            except Conflict:  # a parallel first request created it
                user = await User.get_or_none(email=email)
        if user is None:
            raise Unauthorized("Unknown user")
        if not user.is_active:
            raise Unauthorized("User is deactivated")
        return user

    async def principal(self, token: str, http: aiohttp.ClientSession | None) -> Principal:
        claims = await self.claims(token, http)
        team_roles = self._team_roles(claims)
        user = await self._user(claims)
        granted = bool(
            self.cfg.super_admin_claim and claims.get(self.cfg.super_admin_claim) is True
        )
        return Principal(
            user_id=user.id,
            email=user.email,
            is_super_admin=user.is_super_admin or granted,
            via="jwt",
            team_roles=team_roles,
            extra={"iss": claims.get("iss"), "sub": claims.get("sub")},
        )
