"""Small pieces the OAuth flow, token and route modules share."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from quart import Quart, current_app

from gateway.crypto import TokenCipher
from gateway.errors import NotFound
from gateway.oauth.provider import OAuthProvider

if TYPE_CHECKING:  # pragma: no cover
    from gateway.app import Gateway

HOOK = "register_oauth_providers"


def gateway_of(app: Quart | None = None) -> Gateway:
    return (app or current_app).extensions["gateway"]


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> TokenCipher:
    return TokenCipher(keys)


def gateway_of_app() -> Quart:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def normalize_scopes(scopes: str) -> str:
    """Space-separated, whatever the provider used (some answer with commas)."""
    return " ".join(scopes.replace(",", " ").split())


def cipher(gw: Gateway) -> TokenCipher:
    """The token cipher for the app's current keys (newest first)."""
    return _cipher(tuple(gw.secrets.encryption_keys))


def providers(gw: Gateway) -> dict[str, OAuthProvider]:
    return gw.registry(HOOK)


def provider_named(gw: Gateway, name: str) -> OAuthProvider:
    """:raises NotFound: for a provider no enabled plugin registered."""
    provider = providers(gw).get(name)
    if provider is None:
        raise NotFound(f"Unknown integration provider: {name}")
    return provider


def public_origin(gw: Gateway) -> str:
    return str(gw.config.gateway.public_url or "").rstrip("/")


def redirect_uri(gw: Gateway, name: str) -> str:
    return f"{public_origin(gw)}/api/integrations/{name}/callback"
