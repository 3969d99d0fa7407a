"""Core plugin: mounts ``/api/webhooks/<path>`` for every registered webhook source, plus
the events API and the per-source counters."""

from __future__ import annotations

from functools import partial
from typing import Any

from quart import Blueprint

from gateway import hookimpl
from gateway.errors import StartupError

PREFIX = "/api/webhooks/"


def _view(source: Any) -> Any:
    from gateway.webhooks.ingest import handle

    view = partial(handle, source)

    async def receive() -> Any:
        return await view()

    receive.__name__ = f"receive_{source.name.replace('.', '_')}"
    return receive


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.webhooks.api import bp as api_bp

    gw = app.extensions["gateway"]
    sources = gw.registry("register_webhook_sources")
    bp = Blueprint("webhooks", __name__)
    seen: dict[str, str] = {}
    for name, source in sources.items():
        path = source.path.strip("/")
        if not path or path == "stats":
            raise StartupError(f"webhook source '{name}': path '{source.path}' is not allowed")
        if path in seen:
            raise StartupError(
                f"webhook source '{name}': path '{path}' is already used by '{seen[path]}'"
            )
        seen[path] = name
        bp.add_url_rule(
            PREFIX + path,
            endpoint=name.replace(".", "_"),
            view_func=_view(source),
            methods=list(source.methods),
        )
    return [bp, api_bp]
