"""Salesforce plugin: lets a team connect its Salesforce org over OAuth 2.0 (web-server
flow with PKCE, client credentials in the form body).

Quirks handled here (see docs/plugins/salesforce.md and ../shared/providers.md §3):

- the login host is chosen per connection (production ``login.salesforce.com``, sandbox
  ``test.salesforce.com`` or the org's My Domain), validated strictly at connect time and
  kept with the connection for refresh and revocation;
- the token response has no ``expires_in`` (the access token is a session): the engine
  keeps the expiry unknown, and :func:`api_request` refreshes after a 401
  ``INVALID_SESSION_ID`` and retries once;
- the response's ``signature`` (HMAC-SHA256 of ``id`` + ``issued_at`` under the client
  secret) is checked before the bearer token is sent to the identity URL ``id``;
- ``instance_url`` (the org's REST base) and the identity URL are kept with the connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr, field_validator

from gateway import hookimpl
from gateway.config import GatewayConfig, PluginSettings
from gateway.errors import ValidationError
from gateway.oauth.provider import AccountInfo, IdentityRequest, OAuthProvider, Options

NAME = "salesforce"
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

# A My Domain login host: "acme.my.salesforce.com" or, for a sandbox,
# "acme--uat.sandbox.my.salesforce.com". Nothing else is accepted from a request.
MY_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?(?:\.sandbox)?\.my\.salesforce\.com$")
# Hosts Salesforce hands back in a token response (identity URL, instance URL).
SALESFORCE_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*(?:salesforce\.com|force\.com)$")


class SalesforceSettings(PluginSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    login_base_url: str = "https://login.salesforce.com"  # environment=production
    sandbox_base_url: str = "https://test.salesforce.com"  # environment=sandbox
    allow_my_domain: bool = True
    scopes: list[str] = Field(default_factory=lambda: ["api", "refresh_token", "id"])
    api_version: str = Field(default="v62.0", pattern=r"^v[0-9]+\.[0-9]$")
    # The org's session timeout, if you want refreshes ahead of it instead of after the
    # first 401. Unset: expiry unknown (Salesforce does not say).
    session_seconds: int | None = Field(default=None, gt=60)

    @field_validator("login_base_url", "sandbox_base_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path.strip("/"):
            raise ValueError("must be an http(s) origin, e.g. https://login.salesforce.com")
        return value.rstrip("/")

    def configured_origins(self) -> set[str]:
        return {self.login_base_url, self.sandbox_base_url}


class Salesforce:
    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings

    # -- per-connection login host ---------------------------------------------------

    def connect_options(self, args: Mapping[str, str]) -> dict[str, Any]:
        """``?environment=production|sandbox`` or ``?my_domain=<org>.my.salesforce.com``."""
        my_domain = (args.get("my_domain") or "").strip().lower()
        environment = (args.get("environment") or "").strip().lower()
        if my_domain and environment:
            raise ValidationError("Give either environment or my_domain, not both")
        if my_domain:
            if not self.settings.allow_my_domain:
                raise ValidationError("My Domain logins are disabled", extra={"field": "my_domain"})
            host = my_domain.removeprefix("https://").rstrip("/")
            if not (MY_DOMAIN.match(host) or self._configured_host(host)):
                raise ValidationError(
                    "my_domain must be <name>.my.salesforce.com or "
                    "<name>--<sandbox>.sandbox.my.salesforce.com",
                    extra={"field": "my_domain"},
                )
            return {"environment": "my_domain", "my_domain": host}
        if environment in ("", "production"):
            return {"environment": "production"}
        if environment == "sandbox":
            return {"environment": "sandbox"}
        raise ValidationError(
            "environment must be production or sandbox", extra={"field": "environment"}
        )

    def _configured_host(self, host: str) -> str | None:
        # Only the operator's own base URLs (e.g. a test server) bypass the pattern.
        for origin in self.settings.configured_origins():
            if urlsplit(origin).netloc.lower() == host:
                return origin
        return None

    def login_origin(self, options: Options) -> str:
        env = options.get("environment", "production")
        if env == "sandbox":
            return self.settings.sandbox_base_url
        if env == "my_domain":
            host = str(options.get("my_domain", "")).lower()
            configured = self._configured_host(host)
            if configured:
                return configured
            if not MY_DOMAIN.match(host):  # stored options are re-checked before use
                raise ValidationError("stored my_domain is not a Salesforce My Domain")
            return f"https://{host}"
        return self.settings.login_base_url

    def endpoint(self, path: str) -> Callable[[Options], str]:
        """``/services/oauth2/<path>`` on the connection's login host."""
        return lambda options: f"{self.login_origin(options)}/services/oauth2/{path}"

    # -- identity --------------------------------------------------------------------

    def trusted_url(self, url: str) -> bool:
        """An identity or instance URL we may send the bearer token to."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and SALESFORCE_HOST.match(host):
            return True
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        return origin in {o.lower() for o in self.settings.configured_origins()}

    def signature_ok(self, token: Mapping[str, Any]) -> bool:
        """``signature`` = base64(HMAC-SHA256(client_secret, id + issued_at))."""
        secret = self.settings.client_secret
        sig, ident, issued = token.get("signature"), token.get("id"), token.get("issued_at")
        if not (secret and isinstance(sig, str) and ident and issued):
            return False
        mac = hmac.new(
            secret.get_secret_value().encode(), f"{ident}{issued}".encode(), hashlib.sha256
        )
        expected = base64.b64encode(mac.digest()).decode()
        return hmac.compare_digest(expected.encode(), sig.encode())

    async def fetch_identity(self, req: IdentityRequest) -> AccountInfo:
        token = req.token
        identity_url = str(token.get("id") or "")
        instance_url = str(token.get("instance_url") or "").rstrip("/")
        if not self.signature_ok(token):
            raise RuntimeError("token response signature does not match")
        if not (self.trusted_url(identity_url) and self.trusted_url(instance_url)):
            raise RuntimeError("identity or instance URL is not a Salesforce host")
        headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}
        async with req.http.get(identity_url, headers=headers, timeout=TIMEOUT) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, Mapping):
                raise RuntimeError(f"identity URL answered HTTP {resp.status}")
        org, user = str(body.get("organization_id") or ""), str(body.get("user_id") or "")
        if not (org and user):
            raise RuntimeError("identity response lacks organization_id/user_id")
        username = str(body.get("username") or body.get("email") or user)
        return AccountInfo(
            account_id=f"{org}/{user}",
            label=username,
            data={
                "organization_id": org,
                "user_id": user,
                "username": username,
                "email": str(body.get("email") or ""),
                "instance_url": instance_url,
                "identity_url": identity_url,
                "environment": req.options.get("environment", "production"),
            },
        )


def session_expired(status: int, body: Any) -> bool:
    """Salesforce's "the access token is no longer valid" answer:
    401 ``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``."""
    if status != 401:
        return False
    items = body if isinstance(body, list) else [body]
    return any(isinstance(i, Mapping) and i.get("errorCode") == "INVALID_SESSION_ID" for i in items)


async def api_request(
    team: Any, method: str, path: str, *, json: Any = None, app: Any = None
) -> tuple[int, Any]:
    """Call the team's org REST API (``path`` under its ``instance_url``, e.g.
    ``/services/data/v62.0/sobjects/Task``). Salesforce never says when a session ends,
    so a 401 ``INVALID_SESSION_ID`` triggers one refresh (shared with concurrent callers
    by the engine) and one retry. Raises the engine's typed token errors."""
    from gateway.app import get_gateway
    from gateway.oauth.models import OAuthConnection
    from gateway.oauth.tokens import NotConnected, get_access_token

    if not path.startswith("/services/"):
        raise ValueError("path must start with /services/")
    gw = get_gateway(app)
    team_id = int(getattr(team, "id", team))
    row = await OAuthConnection.get_or_none(team_id=team_id, provider=NAME)
    if row is None:
        raise NotConnected(team_id, NAME)
    url = str((row.account_data or {}).get("instance_url", "")).rstrip("/") + path
    token = await get_access_token(team_id, NAME, app=app)
    for attempt in (1, 2):
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        async with gw.http.request(
            method, url, json=json, headers=headers, timeout=TIMEOUT
        ) as resp:
            status = resp.status
            try:
                body = await resp.json(content_type=None)  # None for an empty body
            except ValueError:
                body = await resp.text()
        if attempt == 1 and session_expired(status, body):
            token = await get_access_token(team_id, NAME, rejected=token, app=app)
            continue
        break
    return status, body


def build(settings: SalesforceSettings) -> OAuthProvider:
    sf = Salesforce(settings)
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    return OAuthProvider(
        name=NAME,
        display_name="Salesforce",
        client_id=settings.client_id,
        client_secret=secret,
        authorize_url=sf.endpoint("authorize"),
        token_url=sf.endpoint("token"),
        revocation_url=sf.endpoint("revoke"),
        scopes=tuple(settings.scopes),
        client_auth_method="client_secret_post",
        pkce=True,
        fetch_identity=sf.fetch_identity,
        connect_options=sf.connect_options,
        default_expires_in=settings.session_seconds,
    )


def load(config: GatewayConfig) -> SalesforceSettings:
    # The core warns when client_id/client_secret are missing and keeps the secret out
    # of every log line.
    return config.plugin_config(NAME, SalesforceSettings)


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    return [build(load(config))]
