"""A tiny third-party gateway plugin: one route and a typed setting."""

from __future__ import annotations

from quart import Blueprint

from gateway import hookimpl
from gateway.config import PluginSettings


class Settings(PluginSettings):
    greeting: str = "hello from sample_crm"


@hookimpl
def register_routes(app, config):
    settings = config.plugin_config("sample_crm", Settings)
    bp = Blueprint("sample_crm", __name__)

    @bp.get("/api/sample-crm/ping")
    async def ping():
        return {"greeting": settings.greeting}

    return bp
