"""Core plugin: mounts ``/api/webhooks/<path>`` for every registered webhook source, plus
the events API and the per-source counters."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl
from gateway.contract.route import webhook_api
from gateway.errors import PayloadTooLarge, StartupError

PREFIX = "/api/webhooks/"


def _endpoint(source_name: str) -> str:
    """A source's endpoint name (a dot would read as a blueprint separator)."""
    return source_name.replace(".", "_")


def _view(source: Any) -> Any:
    from gateway.webhooks.ingest import handle

    async def receive() -> Any:
        return await handle(source)

    receive.__name__ = f"receive_{_endpoint(source.name)}"
    return webhook_api(source.contract, source.form and source.streaming is None, receive)


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
            endpoint=_endpoint(name),
            view_func=_view(source),
            methods=list(source.methods),
        )
    _raise_framework_limit(app, bp, sources.values(), config.gateway.max_body_bytes)
    if any(s.streaming is not None for s in sources.values()):
        from gateway.webhooks.backpressure import install

        install(app)  # streamed bodies must not run ahead of the disk
    return [bp, api_bp]


def _raise_framework_limit(app: Any, bp: Blueprint, sources: Any, default: int) -> None:
    """Quart refuses bodies over ``MAX_CONTENT_LENGTH`` before any view runs, so a source
    that allows more than the app-wide default would never see its body. The framework
    limit becomes the largest source limit; every other route is held back to the
    default here, and webhook routes to their own limit by the ingestion code."""
    largest = max([default, *(s.max_body_bytes for s in sources)])
    if largest <= default:
        return
    app.config["MAX_CONTENT_LENGTH"] = largest
    webhook_endpoints = {f"{bp.name}.{_endpoint(s.name)}" for s in sources}

    @bp.before_app_request
    async def default_body_limit() -> None:
        from quart import request

        if request.endpoint in webhook_endpoints:
            return
        if request.content_length is not None and request.content_length > default:
            raise PayloadTooLarge()
        # Chunked bodies: Quart's Body checks its limit on every chunk it receives from
        # now on; what already arrived is checked here.
        body = request.body
        if hasattr(body, "_max_content_length"):
            body._max_content_length = default
            if len(getattr(body, "_data", b"")) > default:
                raise PayloadTooLarge()
