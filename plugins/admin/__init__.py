"""Admin plugin: the one-time super-admin setup and the protected database check.

- ``POST /api/setup-super-admin``: creates the first super admin with the setup token.
- ``GET /api/debug/db``: database health for super admins, only with
  ``[gateway] debug_endpoints = true``.

See docs/plugins/admin.md.
"""

from __future__ import annotations

from typing import Any

from limits import parse
from pydantic import field_validator
from quart import Blueprint, Quart

from gateway import hookimpl
from gateway.config import GatewayConfig, PluginSettings

PLUGIN = "admin"


class AdminSettings(PluginSettings):
    """The ``[plugins.admin]`` table."""

    # Guesses of the setup token per client address; every call to the endpoint counts.
    setup_rate_limit: str = "5/minute"

    @field_validator("setup_rate_limit")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate like '5/minute'") from None
        return value


def settings(config: GatewayConfig) -> AdminSettings:
    return config.plugin_config(PLUGIN, AdminSettings)


@hookimpl
def register_models(config: GatewayConfig) -> dict[str, Any]:
    return {"admin": {"models": ["plugins.admin.models"], "migrations": "plugins.admin.migrations"}}


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint:
    settings(config)  # a bad [plugins.admin] table stops startup, not the first request
    from plugins.admin.routes import bp

    return bp
