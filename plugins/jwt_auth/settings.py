"""``[plugins.jwt_auth]``: where the signing keys come from and which claims say who the
caller is. Checked at startup, so a half-configured identity provider never serves."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from gateway.config import GatewayConfig, PluginSettings
from gateway.errors import StartupError
from gateway.identity import ROLES

PLUGIN = "jwt_auth"
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key must be at least as long as the hash
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class JwtSettings(PluginSettings):
    hs256_secret: SecretStr | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | list[str] | None = None
    algorithms: list[str] | None = None
    email_claim: str = "email"
    team_claim: str = "team_id"
    role_claim: str = "role"
    # The identity provider's role names onto ours; owner, admin and member map to
    # themselves unless overridden.
    role_map: dict[str, str] = Field(default_factory=dict)
    super_admin_claim: str | None = None
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    create_users: bool = False
    jwks_cache_seconds: int = Field(default=300, ge=0)
    jwks_min_refresh_seconds: int = Field(default=30, ge=0)

    @property
    def mode(self) -> str:
        return "hs256" if self.hs256_secret is not None else "jwks"

    @property
    def audiences(self) -> list[str]:
        if self.audience is None:
            return []
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)

    def role_for(self, value: object) -> str | None:
        """Our role for the token's role claim, or None when it grants none of ours."""
        if not isinstance(value, str):
            return None
        mapping = {role: role for role in ROLES} | self.role_map
        return mapping.get(value)


def _fail(key: str, message: str) -> StartupError:
    return StartupError(f"plugin '{PLUGIN}': key '{key}': {message}")


def _check_algorithms(cfg: JwtSettings) -> None:
    allowed = HMAC_ALGORITHMS if cfg.mode == "hs256" else ASYMMETRIC_ALGORITHMS
    if cfg.algorithms is None:
        cfg.algorithms = ["HS256"] if cfg.mode == "hs256" else ["RS256"]
    # Keeping the families apart stops the classic confusion attack: a token "signed"
    # with HS256 using the provider's public key as the secret.
    bad = [a for a in cfg.algorithms if a not in allowed]
    if bad or not cfg.algorithms:
        raise _fail(
            "algorithms",
            f"with {'hs256_secret' if cfg.mode == 'hs256' else 'jwks_url'} only "
            f"{', '.join(sorted(allowed))} are allowed",
        )


def validate(cfg: JwtSettings) -> JwtSettings:
    """Cross-key rules pydantic cannot say per field.

    :raises StartupError: naming the first bad key.
    """
    if (cfg.hs256_secret is None) == (cfg.jwks_url is None):
        raise _fail("hs256_secret", "set exactly one of hs256_secret or jwks_url")
    if cfg.hs256_secret is not None:
        if len(cfg.hs256_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise _fail("hs256_secret", f"must be at least {MIN_SECRET_BYTES} bytes")
    if cfg.jwks_url is not None:
        parts = urlsplit(cfg.jwks_url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        ):
            raise _fail("jwks_url", "must be an https:// URL (http only on loopback)")
        if not cfg.issuer:
            raise _fail("issuer", "is required with jwks_url")
    if not cfg.audiences or not all(cfg.audiences):
        raise _fail("audience", "is required (the value your identity provider puts in aud)")
    _check_algorithms(cfg)
    for theirs, ours in cfg.role_map.items():
        if ours not in ROLES:
            raise _fail(f"role_map.{theirs}", f"must be one of {', '.join(ROLES)}")
    return cfg


def load(config: GatewayConfig) -> JwtSettings | None:
    """The validated settings, or None when the plugin is merely installed: with no
    configuration file every installed plugin is on, and this one has nothing to check
    tokens against yet, so it warns and stays out of the way."""
    cfg = config.plugin_config(PLUGIN, JwtSettings)
    if config.allowlist is None and cfg.hs256_secret is None and cfg.jwks_url is None:
        config.warn(f"plugin '{PLUGIN}': no hs256_secret or jwks_url set; JWTs are not accepted")
        return None
    return validate(cfg)
