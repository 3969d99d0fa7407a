"""``/healthz`` (the process is up) and ``/readyz`` (the database answers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quart import Blueprint, Quart, jsonify

from gateway.config import GatewayConfig
from gateway.responses import error_response
from hookspecs import hookimpl

log = logging.getLogger("gateway.health")

READY_TIMEOUT_S = 2.0


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    async def healthz() -> Any:
        return jsonify({"status": "ok"})

    @bp.get("/readyz")
    async def readyz() -> Any:
        gw = app.extensions["gateway"]
        try:
            latency = await asyncio.wait_for(gw.db.ping(), READY_TIMEOUT_S)
        except Exception as exc:  # any failure to reach the database means "not ready"
            log.warning("readiness check failed: %s", type(exc).__name__)
            return error_response(503, "SERVICE_UNAVAILABLE", "Database is not reachable")
        return jsonify({"status": "ready", "database_ms": round(latency, 2)})

    return bp
