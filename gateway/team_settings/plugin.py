"""Core plugin: collects every plugin's team settings model and serves
``/api/teams/<team_id>/settings``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> Blueprint:
    from gateway.team_settings.api import bp
    from gateway.team_settings.registry import KEY, collect

    # Collected here, while the app is created, so a bad model stops startup.
    app.extensions[KEY] = collect(app.extensions["gateway"].pm, config)
    return bp
