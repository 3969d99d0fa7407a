"""Core plugin: mounts ``/api/integrations/...`` for every registered provider."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.oauth.routes import bp

    return [bp]
