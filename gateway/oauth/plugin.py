"""Core plugin: mounts ``/api/integrations/...`` for every registered provider."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.oauth.routes import bp

    registry = app.extensions["gateway"].registries["register_oauth_providers"]
    for plugin, provider in registry.values():
        if not provider.configured:
            config.warn(
                f"plugin '{plugin}': client_id/client_secret not set: {provider.display_name} "
                "is listed as not configured and connecting it answers 503"
            )
    return [bp]
