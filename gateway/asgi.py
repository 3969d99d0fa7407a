"""ASGI entry point for Hypercorn workers: ``gateway.asgi:app_from_environment()``.

Each worker process builds its own app from ``$GATEWAY_CONFIG`` (set by ``gateway serve``).
"""

from __future__ import annotations

import gc

from quart import Quart

from gateway.app import create_app
from gateway.config import load_config
from gateway.logs import configure_logging
from gateway.serve_workers import ignore_stop_signals_if_supervised


def tuned_for_serving(app: Quart) -> Quart:
    """Once the app has started (plugins loaded, database open), move everything alive
    into the collector's permanent generation. Those objects live as long as the
    process; leaving them in the oldest generation made every full collection walk
    them, which measured as a third of a status callback's p99 latency (bench/)."""

    @app.before_serving
    async def freeze_startup_heap() -> None:
        gc.collect()
        gc.freeze()

    return app


def app_from_environment() -> Quart:
    ignore_stop_signals_if_supervised()
    config = load_config()
    configure_logging(config.gateway.log_format, config.gateway.log_level)
    return tuned_for_serving(create_app(config))
