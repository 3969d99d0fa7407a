"""Secrets the gateway owns: the session signing key, the token encryption keys, the cron
secret and the one-time setup token.

Configured values win. Anything not configured is generated once into
``<data_dir>/secrets.json`` (mode 0600), so the embedded default starts with no
configuration and keeps working across restarts. The file's location is logged when it
is created; its contents never are.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig

log = logging.getLogger("gateway.secrets")

SECRETS_FILE = "secrets.json"


@dataclass(frozen=True, repr=False)
class OwnedSecrets:
    session_secret: str
    encryption_keys: tuple[str, ...]  # newest first; Fernet keys (urlsafe base64, 32 bytes)
    cron_secret: str
    setup_token: str

    def __repr__(self) -> str:  # never show a secret, even in a debugger dump
        return "OwnedSecrets(**********)"


def new_fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _generate() -> dict[str, object]:
    return {
        "session_secret": secrets.token_urlsafe(32),
        "encryption_keys": [new_fernet_key()],
        "cron_secret": secrets.token_urlsafe(32),
        "setup_token": secrets.token_urlsafe(24),
    }


def secrets_path(config: GatewayConfig) -> Path:
    return config.gateway.data_dir / SECRETS_FILE


def read_generated(config: GatewayConfig) -> dict[str, Any]:
    path = secrets_path(config)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def write_generated(config: GatewayConfig, values: dict[str, object]) -> Path:
    path = secrets_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    os.replace(tmp, path)
    return path


OWNED = ("session_secret", "encryption_keys", "cron_secret", "setup_token")


def _configured(config: GatewayConfig, name: str) -> bool:
    value = getattr(config.gateway, name)
    return bool(value) if isinstance(value, list) else value is not None


def owned_secret_sources(config: GatewayConfig) -> dict[str, str]:
    """Where each owned secret comes from, without creating anything: ``"configured"``,
    ``"generated"`` (in the secrets file) or ``"would be generated"``."""
    generated = read_generated(config)
    return {
        name: "configured"
        if _configured(config, name)
        else ("generated" if name in generated else "would be generated")
        for name in OWNED
    }


def load_owned_secrets(config: GatewayConfig, *, create: bool = True) -> OwnedSecrets:
    """Configured secrets, else the generated ones.

    :param create: write the secrets file when it is missing (``serve`` and the commands
        that run the app). ``False`` (``check``, ``plugins``, ``config``) uses throw-away
        values instead and writes nothing.
    """
    gw = config.gateway
    generated = read_generated(config)
    needs_file = not all(_configured(config, name) for name in OWNED)
    if needs_file and not generated:
        generated = _generate()
        if create:
            path = write_generated(config, generated)
            log.warning("generated gateway secrets into %s (owner-only); keep this file", path)

    def pick(name: str) -> str:
        value = getattr(gw, name)
        return value.get_secret_value() if value is not None else str(generated[name])

    keys = (
        tuple(k.get_secret_value() for k in gw.encryption_keys)
        if gw.encryption_keys
        else tuple(str(k) for k in generated["encryption_keys"])
    )
    return OwnedSecrets(
        session_secret=pick("session_secret"),
        encryption_keys=keys,
        cron_secret=pick("cron_secret"),
        setup_token=pick("setup_token"),
    )
