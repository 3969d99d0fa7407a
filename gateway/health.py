"""``/healthz`` (the process is up) and ``/readyz`` (the database answers)."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, Quart, jsonify

from gateway.config import GatewayConfig
from gateway.contract import PUBLIC, api
from gateway.contract import admin_models as m
from gateway.errors import DatabaseUnavailable
from gateway.responses import outage_log
from hookspecs import hookimpl

READY_TIMEOUT_S = 2.0


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    @api(m.Healthy, auth=PUBLIC)
    async def healthz() -> Any:
        return jsonify({"status": "ok"})

    @bp.get("/readyz")
    @api(m.Ready, auth=PUBLIC)
    async def readyz() -> Any:
        gw = app.extensions["gateway"]
        outage = outage_log(app)
        try:
            latency = await asyncio.wait_for(gw.db.ping(), READY_TIMEOUT_S)
        except Exception as exc:  # any failure to reach the database means "not ready"
            # Load balancers poll this every few seconds: one log line per outage.
            outage.failed(exc)
            raise DatabaseUnavailable("Database is not reachable") from None
        outage.ok()
        return jsonify({"status": "ready", "database_ms": round(latency, 2)})

    return bp
