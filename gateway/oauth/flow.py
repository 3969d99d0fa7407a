"""connect and callback: the authorization-code flow with PKCE and a server-side state.

The state is 256 random bits, stored only as a SHA-256, single use (the callback deletes
the row and only the request whose DELETE removed it proceeds), valid for ten minutes of
``gw.clock``, and bound to the team, the user, the provider and the browser (the hash of
a nonce in a cookie, :mod:`gateway.oauth.binding`). The PKCE verifier is kept with it
(encrypted) and never leaves the server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.errors import GatewayError, ServiceUnavailable, ValidationError
from gateway.identity.tokens import hash_token
from gateway.oauth import binding, common
from gateway.oauth.client import TokenEndpointError, token_request
from gateway.oauth.models import OAuthConnection, OAuthState
from gateway.oauth.provider import AccountInfo, IdentityRequest, OAuthProvider

if TYPE_CHECKING:  # pragma: no cover
    from gateway.app import Gateway
    from gateway.identity.models import Team

log = logging.getLogger("gateway.oauth")

STATE_TTL = timedelta(minutes=10)


class CallbackError(GatewayError):
    """A callback that stores nothing. ``return_to`` is set when the state was valid
    enough to know where the browser came from."""

    status, code = 400, "OAUTH_CALLBACK_FAILED"

    def __init__(self, code: str, message: str, *, status: int = 400, return_to: str | None = None):
        super().__init__(message)
        self.code, self.status, self.return_to = code, status, return_to


def check_return_to(gw: Gateway, value: str | None) -> str | None:
    """A same-origin return path: a relative path, or an absolute URL on the gateway's
    public origin or one of its CORS origins (the dashboard). Anything else is refused,
    so the callback can never be used as an open redirect."""
    if value is None or value == "":
        return None
    refused = ValidationError("return_to is not an allowed URL", extra={"field": "return_to"})
    if len(value) > 2000 or any(ord(c) < 0x21 or c == "\\" for c in value):
        raise refused
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a malformed port)
    except ValueError:
        raise refused from None
    if not parts.scheme and not parts.netloc:
        if value.startswith("/") and not value.startswith("//"):
            return value
    elif parts.scheme in {"http", "https"} and parts.netloc:
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        allowed = {common.public_origin(gw).lower()}
        allowed |= {o.rstrip("/").lower() for o in gw.config.gateway.cors_origins}
        if origin in allowed and "@" not in parts.netloc:
            return value
    raise refused


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query (before any ``#fragment``)."""
    base, hash_, fragment = url.partition("#")
    joined = base + ("&" if "?" in base else "?") + urlencode(params)
    return joined + hash_ + fragment


def _require_configured(provider: OAuthProvider) -> None:
    if not provider.configured:
        raise ServiceUnavailable(
            f"{provider.display_name} is not configured on this gateway",
            extra={"provider": provider.name, "reason": "not_configured"},
        )


@dataclass
class Started:
    """A new authorization: where to send the browser, the state (for the continue
    link) and the nonce the browser must hold (its cookie)."""

    authorization_url: str
    state: str
    nonce: str


async def start(
    gw: Gateway,
    provider: OAuthProvider,
    team: Team | int,
    user_id: int,
    return_to: str | None,
    args: Mapping[str, str],
    *,
    options: Mapping[str, Any] | None = None,
) -> Started:
    """Store a new state bound to a new browser nonce. ``options``: already checked
    connect options (a restart), instead of reading them from ``args``."""
    _require_configured(provider)
    return_to = check_return_to(gw, return_to)
    if options is None:
        options = provider.connect_options(args) if provider.connect_options else {}
    state = generate_token(43)  # 43 chars of [A-Za-z0-9]: ~256 bits
    nonce = binding.new_nonce()
    verifier = generate_token(64) if provider.pkce else None
    now = gw.clock.now()
    cipher = common.cipher(gw)
    await OAuthState.filter(expires_at__lt=now).delete()  # keep the table small
    await OAuthState.create(
        state_hash=hash_token(state),
        browser_hash=binding.nonce_hash(nonce),
        provider=provider.name,
        team_id=getattr(team, "id", team),
        user_id=user_id,
        code_verifier_enc=cipher.encrypt_optional(verifier),
        return_to=return_to,
        options=dict(options),
        created_at=now,
        expires_at=now + STATE_TTL,
    )
    params = {
        "response_type": "code",
        "client_id": provider.client_id or "",
        "redirect_uri": common.redirect_uri(gw, provider.name),
        "state": state,
    }
    if provider.scopes:
        params["scope"] = provider.scope_separator.join(provider.scopes)
    if verifier is not None:
        params["code_challenge"] = create_s256_code_challenge(verifier)
        params["code_challenge_method"] = "S256"
    params.update(provider.extra_authorize_params)
    url = with_query(provider.endpoint("authorize_url", dict(options)) or "", params)
    return Started(url, state, nonce)


async def restart(gw: Gateway, provider: OAuthProvider, raw: str | None, user_id: int) -> Started:
    """The continue link of a connect started without a browser (an API token): the
    same user, signed in to this browser, takes the authorization over. The old state
    is used up (so the link works once) and a new one, bound to this browser, replaces
    it with the same team, return path and options.

    :raises CallbackError: unknown, used or expired state; another user's.
    """
    row = await _consume(gw, provider, raw, user_id, nonce=None, check_browser=False)
    return await start(
        gw, provider, row.team_id, row.user_id, row.return_to, {}, options=row.options or {}
    )


async def _consume(
    gw: Gateway,
    provider: OAuthProvider,
    raw: str | None,
    user_id: int | None,
    *,
    nonce: str | None,
    check_browser: bool = True,
) -> OAuthState:
    if not raw:
        raise CallbackError("INVALID_STATE", "The authorization state is missing")
    row = await OAuthState.get_or_none(state_hash=hash_token(raw))
    if row is None:
        raise CallbackError("INVALID_STATE", "Unknown or already used authorization state")
    if row.provider != provider.name:
        raise CallbackError("INVALID_STATE", "The authorization state belongs to another provider")
    if user_id is not None and user_id != row.user_id:
        raise CallbackError(
            "STATE_USER_MISMATCH", "This authorization was started by another user", status=403
        )
    # Checked before the state is used up: a stranger's visit (the attack this stops)
    # must not spoil the flow of the browser that did start it.
    if check_browser and not binding.matches(nonce, row.browser_hash):
        raise CallbackError(
            "STATE_BROWSER_MISMATCH",
            "This authorization was started in another browser; start it again here",
            status=403,
        )
    # Single use: only the request whose DELETE removed the row may go on.
    if await OAuthState.filter(id=row.id).delete() != 1:
        raise CallbackError("INVALID_STATE", "Unknown or already used authorization state")
    if row.expires_at <= gw.clock.now():
        raise CallbackError(
            "STATE_EXPIRED", "The authorization took too long; start again", return_to=row.return_to
        )
    return row


@dataclass
class Connected:
    connection: OAuthConnection
    return_to: str | None


async def finish(
    gw: Gateway,
    provider: OAuthProvider,
    args: Mapping[str, str],
    user_id: int | None,
    nonce: str | None,
) -> Connected:
    """Consume the state (``nonce``: what this browser holds, see
    :mod:`gateway.oauth.binding`), exchange the code, learn the account and store the
    tokens.

    :raises CallbackError: for every failure; nothing is stored then.
    """
    row = await _consume(gw, provider, args.get("state"), user_id, nonce=nonce)
    back = row.return_to
    if args.get("error"):
        code = str(args["error"])[:64]
        raise CallbackError("PROVIDER_ERROR", f"The provider answered: {code}", return_to=back)
    if not args.get("code"):
        raise CallbackError(
            "MISSING_CODE", "The provider sent no authorization code", return_to=back
        )
    _require_configured(provider)
    cipher = common.cipher(gw)
    form = {
        "grant_type": "authorization_code",
        "code": str(args["code"]),
        "redirect_uri": common.redirect_uri(gw, provider.name),
    }
    verifier = cipher.decrypt_optional(row.code_verifier_enc)
    if verifier:
        form["code_verifier"] = verifier
    options: dict[str, Any] = dict(row.options or {})
    try:
        async with gw.http_session() as http:  # None outside a serving app
            tokens = await token_request(http, provider, options, form, gw.clock.now())
    except TokenEndpointError as exc:
        log.warning("code exchange for %s failed: %s", provider.name, exc.code)
        raise CallbackError(
            "TOKEN_EXCHANGE_FAILED",
            f"The provider refused the code ({exc.code})",
            status=502,
            return_to=back,
        ) from None
    account = AccountInfo(account_id="", label="")
    if provider.fetch_identity is not None:
        try:
            async with gw.http_session() as http:
                identity_req = IdentityRequest(tokens.raw, options, http)
                account = await provider.fetch_identity(identity_req)
        except Exception as exc:  # a plugin's lookup failing must not store half a connection
            log.warning("identity lookup for %s failed: %s", provider.name, type(exc).__name__)
            raise CallbackError(
                "IDENTITY_FAILED",
                "Could not read the connected account",
                status=502,
                return_to=back,
            ) from None
    now = gw.clock.now()
    scopes = tokens.scope if tokens.scope is not None else " ".join(provider.scopes)
    values = {
        "status": "connected",
        "account_id": account.account_id[:255],
        "account_label": account.label[:320],
        "account_data": dict(account.data),
        "options": options,
        "scopes": common.normalize_scopes(scopes),
        "token_type": tokens.token_type,
        "access_token_enc": cipher.encrypt(tokens.access_token),
        "refresh_token_enc": cipher.encrypt_optional(tokens.refresh_token),
        "expires_at": tokens.expires_at,
        "connected_at": now,
        "connected_by_id": row.user_id,
        "refreshed_at": None,
        "last_error": None,
        "updated_at": now,
    }
    connection = await _store(row.team_id, provider.name, values)
    log.info("team %s connected %s", row.team_id, provider.name)
    return Connected(connection, back)


async def _store(team_id: int, name: str, values: dict[str, Any]) -> OAuthConnection:
    """One connection per team and provider: reconnecting replaces it in place. Two
    callbacks racing to create the first row: the loser updates the winner's row."""
    for _attempt in range(2):
        try:
            async with in_transaction() as conn:
                query = OAuthConnection.filter(team_id=team_id, provider=name).using_db(conn)
                existing = await query.select_for_update().first()
                if existing is None:
                    return await OAuthConnection.create(
                        team_id=team_id, provider=name, using_db=conn, **values
                    )
                if values["refresh_token_enc"] is None and values["account_id"] == (
                    existing.account_id
                ):
                    # The provider issued no new refresh token on this re-consent: the
                    # stored one (same account) is still the valid one.
                    values = {**values, "refresh_token_enc": existing.refresh_token_enc}
                existing.update_from_dict(values)
                await existing.save(using_db=conn)
                return existing
        except IntegrityError:
            continue
    raise CallbackError("CONFLICT", "The connection changed concurrently; try again", status=409)
