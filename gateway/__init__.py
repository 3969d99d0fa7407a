"""Renchi Gateway core.

Plugins write ``from gateway import hookimpl`` and reach the running gateway through the
typed accessor ``get_gateway(app)`` (never ``app.extensions["gateway"]``). What else a
plugin may import is listed in :mod:`gateway.plugin_api`. Importing this package stays
cheap: ``Gateway`` and ``get_gateway`` load the app module only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hookspecs import hookimpl

if TYPE_CHECKING:
    from quart import Quart

    from gateway.app import Gateway

__all__ = ["Gateway", "get_gateway", "hookimpl"]


def get_gateway(app: Quart | None = None) -> Gateway:
    """The gateway of ``app`` (or of the app handling the current request or job):
    config, clock, HTTP session, registries, ``call`` for runtime hooks."""
    from quart import current_app

    gateway: Gateway = (app or current_app).extensions["gateway"]
    return gateway


def __getattr__(name: str) -> Any:
    if name == "Gateway":
        from gateway.app import Gateway

        return Gateway
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
