"""What a plugin hands the core to connect teams to an OAuth provider (the contract)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import aiohttp

# Per-connection options (e.g. a login host or a tenant) chosen at connect time and kept
# with the connection; endpoint callables receive them.
Options = Mapping[str, Any]


@dataclass(frozen=True)
class AccountInfo:
    """Who connected: shown in the status, and kept with the connection."""

    account_id: str
    label: str  # e-mail, org or portal name
    data: Mapping[str, Any] = field(default_factory=dict)  # instance URL, tenant id, ...


@dataclass
class IdentityRequest:
    """Given to :attr:`OAuthProvider.fetch_identity` right after the code exchange."""

    token: Mapping[str, Any]  # the parsed token response
    options: Options
    http: aiohttp.ClientSession  # the gateway's (timeouts set)


@dataclass
class RevokeRequest:
    """Given to :attr:`OAuthProvider.revoke` on disconnect."""

    access_token: str | None
    refresh_token: str | None
    options: Options
    account: Mapping[str, Any]
    http: aiohttp.ClientSession
    client_id: str
    client_secret: str


@dataclass
class OAuthProvider:
    """An OAuth 2.0 authorization-code provider.

    :param name: the URL segment and status key, e.g. ``"acme_crm"``.
    :param client_id: / :param client_secret: from the plugin's settings. ``None`` means
        the provider is not configured: it is listed in the status and ``connect``
        answers a clear error.
    :param authorize_url: / :param token_url: a URL, or ``(options) -> url`` when the host
        depends on the connection (a tenant, a sandbox).
    :param scopes: requested scopes; :param scope_separator: how they are joined.
    :param extra_authorize_params: e.g. ``{"access_type": "offline", "prompt": "consent"}``.
    :param client_auth_method: ``"client_secret_post"`` (form body) or
        ``"client_secret_basic"``.
    :param pkce: send an S256 challenge.
    :param fetch_identity: ``async (IdentityRequest) -> AccountInfo``.
    :param revocation_url: RFC 7009 endpoint (``token=`` form post), or ``(options) -> url``.
    :param revoke: ``async (RevokeRequest) -> None`` for non-standard revocation; wins
        over ``revocation_url``. Neither: disconnect only forgets the tokens.
    :param token_error: ``(status, body) -> error code | None`` to read a provider's own
        error body (e.g. one with no ``error`` key); ``"invalid_grant"`` marks the
        connection ``needs_reconnect``.
    :param connect_options: ``(query args) -> options`` validating per-connection choices
        at connect time; raise ``gateway.errors.ValidationError`` on bad input.
    :param parse_token: ``(body) -> body`` normalising a successful token response into
        RFC 6749 names (``access_token``, ``expires_in``, ``scope`` as a string) before
        the engine reads it; the result is also what ``fetch_identity`` sees.
    :param default_expires_in: seconds to assume when a token response has no
        ``expires_in``; ``None`` means unknown (refresh only after a 401).
    :param refresh_params: extra form fields of a refresh-token grant, e.g. ``scope``
        for a provider that wants the scopes repeated on every refresh.
    :param account_from_token: ``(token response, account data) -> account data | None``,
        asked after each successful refresh with the parsed response and the connection's
        stored account data: return the account data to store from now on (an API host
        that moved with the new token), or ``None`` to keep it. It must not raise; if it
        does, the refresh still stands and the account data is kept.
    """

    name: str
    display_name: str
    client_id: str | None
    client_secret: str | None
    authorize_url: str | Callable[[Options], str]
    token_url: str | Callable[[Options], str]
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    client_auth_method: str = "client_secret_post"
    pkce: bool = True
    fetch_identity: Callable[[IdentityRequest], Awaitable[AccountInfo]] | None = None
    revocation_url: str | Callable[[Options], str] | None = None
    revoke: Callable[[RevokeRequest], Awaitable[None]] | None = None
    token_error: Callable[[int, Mapping[str, Any]], str | None] | None = None
    connect_options: Callable[[Mapping[str, str]], dict[str, Any]] | None = None
    default_expires_in: int | None = None
    parse_token: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    refresh_params: Mapping[str, str] = field(default_factory=dict)
    account_from_token: (
        Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any] | None] | None
    ) = None

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def endpoint(self, which: str, options: Options) -> str | None:
        value = getattr(self, which)
        return value(options) if callable(value) else value
