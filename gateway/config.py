"""Configuration: ``plugins.toml`` plus ``GATEWAY_*`` environment overrides.

The file has a ``[gateway]`` table for the core and one ``[plugins.<name>]`` table per
plugin. A plugin table's presence enables the plugin (``enabled = false`` inside it
disables it); with no file at all, every installed plugin is enabled with its defaults.
Secrets are never written in the file: a value may be ``{ env = "NAME" }`` or
``{ file = "path" }``. Settings are parsed into pydantic models, so a bad value stops
startup with one line naming the plugin and the key, and ``SecretStr`` keeps secrets out
of every repr, log line and config view.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic import ValidationError as PydanticValidationError

from gateway.errors import StartupError
from gateway.logs import REDACTED
from gateway.storage.settings import S3Settings

M = TypeVar("M", bound=BaseModel)

DEFAULT_CONFIG_NAME = "plugins.toml"
ENV_PREFIX = "GATEWAY_"


class MailSettings(BaseModel):
    """The ``[gateway.mail]`` table: the SMTP server outgoing mail goes through. No
    ``host`` means mail is not configured (senders get a clear "not configured")."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    ca_file: Path | None = Field(
        default=None, description="PEM bundle to trust instead of the system's (private CA)."
    )

    @model_validator(mode="after")
    def _complete(self) -> MailSettings:
        if self.host and not self.from_address:
            raise ValueError("from_address is required when host is set")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @property
    def resolved_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class GatewaySettings(BaseModel):
    """The ``[gateway]`` table."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="Defaults to a SQLite file in data_dir (WAL)."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL senders use to reach this gateway (signatures are checked "
        "against it, never against the Host header).",
    )
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # A request body must arrive within this many seconds (JSON and form routes; each
    # webhook source has its own, WebhookSource.body_timeout_seconds): a client that
    # announces a body and trickles it cannot hold a connection.
    body_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    # Hypercorn closes a connection that sends nothing for this long mid-request (a
    # route that never reads the body it was announced included).
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    run_worker: bool = Field(default=True, description="Run the job worker in-process.")
    # Job queue (gateway.jobs): attempts before dead-letter, lease, backoff, concurrency.
    job_max_attempts: int = Field(default=8, ge=1)
    job_lease_seconds: float = Field(default=300, gt=0)
    job_backoff_base_seconds: float = Field(default=2, ge=0)
    job_backoff_cap_seconds: float = Field(default=3600, ge=0)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_concurrency: int = Field(default=4, ge=1)
    job_shutdown_grace_seconds: float = Field(default=10, ge=0)
    # Scheduled tasks (gateway.scheduling): the in-process ticker, how long a cron ping
    # waits for its run, the run lease, retries of a failed window.
    run_scheduler: bool = Field(default=False, description="Run the cron ticker in-process.")
    scheduler_poll_seconds: float = Field(default=60, gt=0)
    cron_wait_seconds: float = Field(default=10, ge=0)
    cron_early_seconds: float = Field(default=60, ge=0)
    cron_lease_seconds: float = Field(default=300, gt=0)
    cron_max_attempts: int = Field(default=3, ge=1)
    cron_shutdown_grace_seconds: float = Field(default=10, ge=0)
    mail: MailSettings = Field(default_factory=MailSettings)
    auto_migrate: bool | None = Field(
        default=None, description="Apply migrations on serve; default: only on SQLite."
    )
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_storage: str = "memory://"
    trusted_proxy_hops: int = Field(
        default=0, ge=0, description="Proxies in front that append to X-Forwarded-For."
    )
    debug_endpoints: bool = False
    # Secrets the gateway owns: generated into data_dir when not configured.
    session_secret: SecretStr | None = None
    encryption_keys: list[SecretStr] = Field(default_factory=list)
    cron_secret: SecretStr | None = None
    setup_token: SecretStr | None = None
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a Prometheus scraper may use for GET /metrics "
        "(super admins may always read it).",
    )
    replica_name: str | None = Field(
        default=None,
        max_length=128,
        description="The replica label on every /metrics series; default: the host name.",
    )
    # Recordings: local disk under data_dir, or an S3-compatible bucket ([gateway.s3]).
    recording_storage: Literal["local", "s3"] = "local"
    s3: S3Settings = Field(default_factory=S3Settings)

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> GatewaySettings:
        if self.recording_storage == "s3" and not self.s3.bucket:
            raise ValueError("recording_storage = 's3' needs [gateway.s3] bucket")
        return self

    @property
    def resolved_auto_migrate(self) -> bool:
        """``auto_migrate``, or its default: on for SQLite (the embedded mode) only."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.resolved_database_url.startswith("sqlite:")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = (self.data_dir / "gateway.db").resolve()
        return f"sqlite://{path}?synchronous=NORMAL&busy_timeout=5000"


def _http_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


# A third party's configurable base URL (tests point it at a loopback fake), normalised
# without a trailing slash.
HttpBaseURL = Annotated[str, AfterValidator(_http_base_url)]


class PluginSettings(BaseModel):
    """Base for a plugin's settings model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _resolve_secret_refs(value: Any, base_dir: Path, missing: list[str], key: str) -> Any:
    """Replace ``{env = ...}`` / ``{file = ...}`` tables by their value.

    An unset variable or a missing file leaves the key out, so the model decides whether
    the setting is required (an error naming the key) or optional (the plugin degrades).
    """
    if isinstance(value, dict) and set(value) in ({"env"}, {"file"}):
        if "env" in value:
            # Empty counts as unset: container platforms pass optional variables as "".
            resolved = os.environ.get(str(value["env"])) or None
            if resolved is None:
                missing.append(f"{key} (environment variable {value['env']} is not set)")
            return resolved
        path = Path(str(value["file"]))
        if not path.is_absolute():
            path = base_dir / path
        try:
            return path.read_text().strip()
        except OSError:
            missing.append(f"{key} (file {path} cannot be read)")
            return None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            resolved = _resolve_secret_refs(v, base_dir, missing, f"{key}.{k}" if key else k)
            if resolved is not None:
                out[k] = resolved
        return out
    if isinstance(value, list):
        items = [_resolve_secret_refs(v, base_dir, missing, key) for v in value]
        return [v for v in items if v is not None]
    return value


def _teach_redactor(value: Any) -> None:
    """Every secret in parsed settings (nested models, dicts and lists included) is
    blanked from log lines from the moment it is parsed, so no plugin has to do it."""
    from gateway.logs import redactor

    if isinstance(value, SecretStr):
        redactor.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for _name, item in value:
            _teach_redactor(item)
    elif isinstance(value, dict):
        for item in value.values():
            _teach_redactor(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _teach_redactor(item)


def _first_error(plugin: str, exc: PydanticValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(table)"
    # Never echo the rejected value: it may be a secret.
    return f"plugin '{plugin}': key '{key}': {err['msg']}"


class GatewayConfig:
    """Everything loaded from the config file and the environment."""

    def __init__(
        self,
        gateway: GatewaySettings,
        plugin_tables: dict[str, dict[str, Any]] | None = None,
        *,
        path: Path | None = None,
        allowlist: set[str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.path = path
        self.base_dir = path.parent if path else Path.cwd()
        self._tables = plugin_tables or {}
        # None: no file, so every installed plugin is enabled.
        self.allowlist = allowlist
        # Set once the plugins are discovered: the names a table may be read under.
        self.plugin_names: set[str] | None = None
        self._parsed: dict[str, BaseModel] = {}
        self.unresolved: dict[str, list[str]] = {}
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Record a startup warning, e.g. a plugin whose third-party credentials are
        missing. Recorded, not logged: ``gateway check`` lists them, and a server logs
        each once when it starts (:func:`gateway.app.log_warnings`)."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- plugins -------------------------------------------------------------------

    def is_enabled(self, name: str) -> bool:
        return self.allowlist is None or name in self.allowlist

    def plugin_table(self, name: str) -> dict[str, Any]:
        if self.plugin_names is not None and name not in self.plugin_names:
            # Reading [plugins.crm] from a plugin installed as "acme_crm" would silently
            # get an empty table (and defaults) however the operator configured it.
            raise StartupError(
                f"a plugin reads [plugins.{name}], but no installed plugin is named "
                f"'{name}': a plugin's table is named after its entry point "
                f"(installed: {', '.join(sorted(self.plugin_names)) or 'none'})"
            )
        return dict(self._tables.get(name, {}))

    def blocked_reason(self, name: str) -> str | None:
        """Why an installed plugin is not loaded, or None if it is."""
        table = self._tables.get(name)
        if table is not None and table.get("enabled", True) is False:
            return f"enabled = false in [plugins.{name}]"
        if self.allowlist is not None and name not in self.allowlist:
            where = self.path.name if self.path else "the configuration"
            return (
                f"not listed in {where}: a [plugins] table enables only the plugins it "
                f"lists, built-ins included; add [plugins.{name}] to enable it"
            )
        return None

    def plugin_config(self, name: str, model: type[M]) -> M:
        """The ``[plugins.<name>]`` table parsed into ``model`` (cached per plugin).

        :raises StartupError: naming the plugin and the first bad key.
        """
        cached = self._parsed.get(name)
        if isinstance(cached, model):
            return cached
        missing: list[str] = []
        raw = _resolve_secret_refs(self.plugin_table(name), self.base_dir, missing, "")
        raw.pop("enabled", None)
        try:
            parsed = model.model_validate(raw)
        except PydanticValidationError as exc:
            detail = _first_error(name, exc)
            if missing:
                detail += f" [{'; '.join(missing)}]"
            raise StartupError(detail) from None
        self.unresolved[name] = missing
        self._parsed[name] = parsed
        _teach_redactor(parsed)
        return parsed

    # -- views ---------------------------------------------------------------------

    def redacted(self) -> dict[str, Any]:
        """The configuration as shown to humans: every secret replaced (pydantic dumps
        each ``SecretStr``, nested ones included, as ``**********``)."""
        gw = self.gateway.model_dump(mode="json")
        gw["database_url"] = redact_url(self.gateway.resolved_database_url)
        plugins = {name: parsed.model_dump(mode="json") for name, parsed in self._parsed.items()}
        return {"gateway": gw, "plugins": plugins}


def redact_url(url: str) -> str:
    """Hide the password of a database URL."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field_name, field in GatewaySettings.model_fields.items():
        env_name = ENV_PREFIX + field_name.upper()
        if env_name not in environ:
            continue
        raw = environ[env_name]
        annotation = str(field.annotation)
        out[field_name] = (
            [p.strip() for p in raw.split(",") if p.strip()]
            if (annotation.startswith("list"))
            else raw
        )
    return out


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``--config``, else ``$GATEWAY_CONFIG``, else ``./plugins.toml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("GATEWAY_CONFIG")
    if env:
        return Path(env)
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> GatewayConfig:
    """Load configuration from a TOML file (or a dict, for tests) plus the environment.

    :raises StartupError: for an unreadable file, bad TOML or an invalid setting.
    """
    environ = dict(os.environ if environ is None else environ)
    cfg_path = None if data is not None else find_config_path(path)
    if data is None:
        data = {}
        if cfg_path is not None:
            try:
                data = tomllib.loads(cfg_path.read_text())
            except FileNotFoundError:
                raise StartupError(f"config: file {cfg_path} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise StartupError(f"config: {cfg_path} is not valid TOML: {exc}") from None
    unknown_top = set(data) - {"gateway", "plugins"}
    if unknown_top:
        raise StartupError(f"config: unknown table '{sorted(unknown_top)[0]}'")
    base_dir = cfg_path.parent if cfg_path else Path.cwd()
    missing: list[str] = []
    gateway_raw = _resolve_secret_refs(dict(data.get("gateway", {})), base_dir, missing, "")
    gateway_raw.update(_env_overrides(environ))
    try:
        settings = GatewaySettings.model_validate(gateway_raw)
    except PydanticValidationError as exc:
        message = _first_error("gateway", exc).replace("plugin 'gateway'", "gateway")
        raise StartupError(message) from None
    _teach_redactor(settings)
    unresolved_s3 = [m for m in missing if m.startswith("s3.")]
    if settings.recording_storage == "s3" and unresolved_s3:
        # A reference that resolves to nothing must not silently fall back to whatever
        # credentials the AWS chain finds on this machine.
        raise StartupError(f"gateway: key {unresolved_s3[0]}")
    if not settings.data_dir.is_absolute():
        settings.data_dir = (base_dir / settings.data_dir).resolve()
    if settings.mail.ca_file is not None and not settings.mail.ca_file.is_absolute():
        settings.mail.ca_file = (base_dir / settings.mail.ca_file).resolve()
    plugin_tables = data.get("plugins", {})
    if not isinstance(plugin_tables, dict) or not all(
        isinstance(v, dict) for v in plugin_tables.values()
    ):
        raise StartupError("config: every entry under [plugins] must be a table")
    allowlist = None
    if "plugins" in data:
        allowlist = {n for n, t in plugin_tables.items() if t.get("enabled", True) is not False}
    config = GatewayConfig(settings, plugin_tables, path=cfg_path, allowlist=allowlist)
    config.unresolved["gateway"] = missing  # references in [gateway] that resolved to nothing
    return config
