"""Direct routes: a hot endpoint served before Quart's request pipeline.

Some webhooks are asked while a phone rings and must answer within a deadline at high
concurrency (a voice agent's personalization). On one core, Quart's request and app
contexts, its hooks and its ``Response`` object cost as much CPU again as Hypercorn
itself (bench/README.md), and at 32 requests in flight every request also waits for the
others' share of it. A plugin marks such a view with :func:`direct`; the core's
:class:`DirectLane`, in front of the Quart app, answers a request for that exact method
and path by calling the handler itself.

A direct handler takes a :class:`DirectRequest` (method, path, headers, the whole body,
the request id, when it arrived) and returns a :class:`DirectResponse` (a status and a
JSON body). What every route of the gateway guarantees holds on the lane too:

- the request id: ``X-Request-Id`` kept when it is safe, else a new one; echoed, and on
  every log line of the request;
- errors are ``{"error": ..., "code": ...}``: a :class:`~gateway.errors.GatewayError`
  as raised, anything else through :func:`gateway.responses.unexpected_error` (logged,
  500; a database outage 503);
- the body limit (the route's ``max_body_bytes``, else ``[gateway] max_body_bytes``):
  413 from ``Content-Length`` before anything is read, or as soon as a chunked body
  passes it; the app's ``BODY_TIMEOUT`` bounds the read (408);
- ``Vary: Origin``, as on every answer.

The lane passes on to Quart (the same handler, through the view :func:`direct`
returns) whatever it does not fully handle: a request carrying ``Origin`` (a browser's,
which the CORS hooks answer), a query string holding a NUL (refused for every route),
an app mounted under a root path. The route stays an ordinary Quart route as well:
listed in ``/openapi.json`` by its ``@api`` contract, served by Quart's test client
through the lane like any other, and through Quart whenever the lane is not installed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import update_wrapper
from typing import Any

from quart import Quart, Response, current_app, g, request

from gateway import get_gateway
from gateway.errors import GatewayError, PayloadTooLarge, RequestTimeout, StartupError
from gateway.logs import request_id_var
from gateway.responses import compact_json, request_id_for, unexpected_error
from gateway.webhooks.ingest import read_body

__all__ = ["DirectRequest", "DirectResponse", "direct"]

log = logging.getLogger("gateway.http")

ATTRIBUTE = "__gateway_direct__"


@dataclass(frozen=True, slots=True)
class DirectRequest:
    method: str
    path: str
    #: lower-case name -> value (the first one when a name is repeated)
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    #: ``loop.time()`` when the request reached the gateway: a deadline counts from here
    received_at: float


@dataclass(frozen=True, slots=True)
class DirectResponse:
    body: Any  # anything json.dumps takes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[DirectRequest], Awaitable[DirectResponse]]


@dataclass(frozen=True, slots=True)
class DirectRoute:
    handler: Handler
    max_body_bytes: int | None


def render(body: Any) -> bytes:
    """JSON as Quart's ``jsonify`` writes it outside debug mode: compact, ASCII."""
    return compact_json(body).encode()


def _scope_headers(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI scope's raw headers as lower-case name -> the first value, in one pass
    (the list is read backwards, so the first value is the one kept)."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in reversed(pairs)
    }


def _default_limit(app: Quart) -> int:
    """A direct route's body limit unless it sets one: every route's own
    (``[gateway] max_body_bytes``; the app's ``MAX_CONTENT_LENGTH`` is raised to the
    largest webhook source's)."""
    return get_gateway(app).config.gateway.max_body_bytes


def direct(*, max_body_bytes: int | None = None) -> Callable[[Handler], Callable[[], Any]]:
    """Turn ``handler`` into a Quart view that the lane serves directly. Register the
    result like any view (``@bp.post(path)``, under ``@api``) on an exact path (no
    ``<converter>``: the app refuses to start otherwise)."""

    def decorate(handler: Handler) -> Callable[[], Any]:
        async def view() -> Response:
            limit = max_body_bytes or _default_limit(current_app)
            body = await read_body(request, limit, current_app.config.get("BODY_TIMEOUT"))
            answer = await handler(
                DirectRequest(
                    method=request.method,
                    path=request.path,
                    headers=_scope_headers(list(request.scope["headers"])),
                    body=body,
                    request_id=g.get("request_id") or "",
                    received_at=asyncio.get_running_loop().time(),
                )
            )
            return Response(
                render(answer.body),
                status=answer.status,
                headers=dict(answer.headers),
                content_type="application/json",
            )

        update_wrapper(view, handler)
        del view.__wrapped__  # type: ignore[attr-defined]  # Quart must call the view
        setattr(view, ATTRIBUTE, DirectRoute(handler, max_body_bytes))
        return view

    return decorate


class _Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


class DirectLane:
    """The ASGI layer in front of ``app.asgi_app`` (installed by :func:`install`)."""

    def __init__(self, app: Quart, inner: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.inner = inner
        self._routes: dict[tuple[str, str], DirectRoute] | None = None
        self.served = 0

    def routes(self) -> dict[tuple[str, str], DirectRoute]:
        """(method, path) -> route, read once from the app's URL map."""
        if self._routes is None:
            self._routes = routes_of(self.app)
        return self._routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.routes().get((scope["method"], scope["path"]))
            if route is not None and self._takes(scope):
                await self._serve(route, scope, receive, send)
                return
        await self.inner(scope, receive, send)

    @staticmethod
    def _takes(scope: dict[str, Any]) -> bool:
        if b"%00" in scope.get("query_string", b""):
            return False
        return not any(name == b"origin" for name, _ in scope["headers"])

    async def _serve(
        self, route: DirectRoute, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        received_at = asyncio.get_running_loop().time()
        headers = _scope_headers(scope["headers"])
        rid = request_id_for(headers.get("x-request-id", ""))
        request_id_var.set(rid)
        self.served += 1
        try:
            body = await self._body(route, headers, receive)
            answer = await route.handler(
                DirectRequest(scope["method"], scope["path"], headers, body, rid, received_at)
            )
            status, payload, extra = answer.status, answer.body, answer.headers
        except _Disconnected:
            return
        except GatewayError as exc:
            status, payload, extra = exc.status, exc.body(), exc.headers
        except Exception as exc:  # answered as on every route (gateway.responses)
            error = unexpected_error(self.app, exc, scope["method"], scope["path"])
            status, payload, extra = error.status, error.body(), error.headers
        content = render(payload)
        out = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            (b"x-request-id", rid.encode()),
            (b"vary", b"Origin"),
        ]
        out += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})

    async def _body(self, route: DirectRoute, headers: Mapping[str, str], receive: Any) -> bytes:
        limit = route.max_body_bytes or _default_limit(self.app)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge()
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.app.config.get("BODY_TIMEOUT")):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise RequestTimeout() from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def routes_of(app: Quart) -> dict[tuple[str, str], DirectRoute]:
    """The app's direct routes by (method, path).

    :raises StartupError: for a direct route whose path is not exact: the lane matches
        paths as they are, so its ``<converter>`` would never be served there.
    """
    found: dict[tuple[str, str], DirectRoute] = {}
    for rule in app.url_map.iter_rules():
        route = getattr(app.view_functions.get(rule.endpoint), ATTRIBUTE, None)
        if route is None:
            continue
        if rule.arguments or rule.host or rule.subdomain:
            raise StartupError(
                f"route {rule.rule} ({rule.endpoint}): @direct needs an exact path, "
                "without <converters>, host or subdomain"
            )
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                found[(method, rule.rule)] = route
    return found


def install(app: Quart) -> None:
    """Put the lane in front of the app, once every route is registered.

    :raises StartupError: see :func:`routes_of`.
    """
    lane = DirectLane(app, app.asgi_app)
    lane.routes()
    app.asgi_app = lane  # type: ignore[method-assign,assignment]


def lane_of(app: Quart) -> DirectLane | None:
    lane = app.asgi_app
    return lane if isinstance(lane, DirectLane) else None
