"""Salesforce over OAuth 2.0: how a team connects its org (web-server flow with PKCE,
client credentials in the form body).

Quirks handled here (see docs/plugins/salesforce.md, with Salesforce's sources):

- the login host is chosen per connection (production ``login.salesforce.com``, sandbox
  ``test.salesforce.com`` or the org's My Domain), validated strictly at connect time and
  kept with the connection for refresh and revocation;
- the token response has no ``expires_in`` (the access token is a session): the engine
  keeps the expiry unknown, and a session (``ProviderSession``) refreshes after a 401
  ``INVALID_SESSION_ID`` (:func:`session_expired`) and retries once;
- the response's ``signature`` (HMAC-SHA256 of ``id`` + ``issued_at`` under the client
  secret) is checked before the bearer token is sent to the identity URL ``id``;
- ``instance_url`` (the org's REST base) and the identity URL are kept with the
  connection; a refresh response naming another (trusted, signed) ``instance_url`` moves
  the connection there (:meth:`Salesforce.account_from_token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.errors import ValidationError
from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider, Options
from plugins.salesforce.settings import NAME, SalesforceSettings

log = logging.getLogger("plugins.salesforce")

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

# A My Domain login host: "acme.my.salesforce.com" or, for a sandbox,
# "acme--uat.sandbox.my.salesforce.com". Nothing else is accepted from a request.
MY_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?(?:\.sandbox)?\.my\.salesforce\.com$")
# Hosts Salesforce hands back in a token response (identity URL, instance URL).
SALESFORCE_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*(?:salesforce\.com|force\.com)$")


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

    def account_from_token(
        self, token: Mapping[str, Any], account: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A refresh response names the org's ``instance_url`` again: when it differs from
        the stored one (the org moved to another instance, or My Domain changed), keep
        the new one, but only if the response is signed with our consumer secret and the
        URL is a Salesforce host (the token is sent there from now on)."""
        url = str(token.get("instance_url") or "").rstrip("/")
        if not url or url == str(account.get("instance_url") or "").rstrip("/"):
            return None
        if not (self.signature_ok(token) and self.trusted_url(url)):
            log.warning(
                "salesforce: a refreshed token names instance host %s, which is not trusted "
                "or not signed; the stored instance URL is kept",
                urlsplit(url).hostname,
            )
            return None
        log.info("salesforce: the org's instance URL moved to %s", urlsplit(url).hostname)
        return {**account, "instance_url": url}


def session_expired(status: int, body: Any) -> bool:
    """Salesforce's "the access token is no longer valid" answer:
    401 ``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``."""
    if status != 401:
        return False
    items = body if isinstance(body, list) else [body]
    return any(isinstance(i, Mapping) and i.get("errorCode") == "INVALID_SESSION_ID" for i in items)


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
        account_from_token=sf.account_from_token,
    )
