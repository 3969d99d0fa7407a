"""Core plugin: serves the calls API (:mod:`gateway.calls.api`)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.calls.api import bp

    return [bp]
