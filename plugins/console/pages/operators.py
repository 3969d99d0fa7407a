"""Operators (super admins): plugins and their state, health, cron runs, queue depth."""

from __future__ import annotations

from typing import Any

from plugins.console import api
from plugins.console.blueprint import bp
from plugins.console.views import render, signed_in, visitor


@bp.get("/operators")
@signed_in
async def operators() -> Any:
    if not visitor().is_super_admin:
        return await render("error.html", 403, message="Super admins only", http_status=403)
    plugins = await api.get("/api/plugins")
    ready = await api.call("GET", "/readyz")
    runs = await api.call("GET", "/api/cron/runs", query={"limit": 20})
    stats = await api.call("GET", "/api/webhooks/stats")
    dead = await api.call("GET", "/api/jobs", query={"status": "dead", "limit": 200})
    pending = await api.call("GET", "/api/jobs", query={"status": "pending", "limit": 200})
    return await render(
        "operators.html",
        plugins=plugins["plugins"],
        ready=ready,
        runs=runs.body.get("items", []) if runs.ok and isinstance(runs.body, dict) else [],
        stats=stats.body if stats.ok else None,
        dead=len(dead.body["items"]) if dead.ok else None,
        pending=len(pending.body["items"]) if pending.ok else None,
    )
