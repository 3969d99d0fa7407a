"""ASGI entry point for Hypercorn workers: ``gateway.asgi:app_from_environment()``.

Each worker process builds its own app from ``$GATEWAY_CONFIG`` (set by ``gateway serve``).
"""

from __future__ import annotations

from quart import Quart

from gateway.app import create_app
from gateway.config import load_config
from gateway.logs import configure_logging


def app_from_environment() -> Quart:
    config = load_config()
    configure_logging(config.gateway.log_format, config.gateway.log_level)
    return create_app(config)
