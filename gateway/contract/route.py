"""``@api(...)``: what one route takes and answers, declared next to it.

It documents the route through quart-schema's own attributes (so its OpenAPI generator
sees request, query and response models) and keeps the rest (auth schemes, error
statuses, non-JSON bodies) in ``CONTRACT_ATTRIBUTE`` for :mod:`gateway.contract.openapi`.
A JSON request model is also enforced: a body that does not fit is ``400
VALIDATION_ERROR`` naming the field, when the view reads it with
:func:`gateway.inputs.json_body` (after the view's authentication and rate limits).
Webhook routes never use that (``validate=False``; ``form``/``raw`` document only):
their signature is checked on the raw bytes, which validation must not read first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
from quart import g
from quart_schema import (
    DataSource,
    document_headers,
    document_querystring,
    document_request,
    document_response,
)

from gateway.contract.schemes import SecurityScheme
from gateway.errors import ValidationError

CONTRACT_ATTRIBUTE = "_gateway_contract"
FORM = "application/x-www-form-urlencoded"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Raw:
    """A body that is not JSON: ``Raw("text/plain")``, ``Raw("text/html")``."""

    media_type: str
    description: str = ""


class _Untyped(pydantic.BaseModel):
    """A body documented by media type only."""


class NoContent:
    """An empty answer (``204``, or a redirect's)."""


class Redirect:
    """A ``302`` to the ``Location`` header."""


Body = type[pydantic.BaseModel] | Raw | type[NoContent] | type[Redirect]


Auth = Iterable[str | SecurityScheme]


def _auth(auth: Auth) -> tuple[tuple[str, ...], tuple[SecurityScheme, ...]]:
    """Scheme names, and the plugin-declared schemes among them."""
    items = tuple(auth)
    names = tuple(a.name if isinstance(a, SecurityScheme) else a for a in items)
    return names, tuple(a for a in items if isinstance(a, SecurityScheme))


@dataclass(frozen=True)
class Contract:
    auth: tuple[str, ...]
    responses: dict[int, Any]
    errors: dict[int, tuple[str, ...]]
    request: type[pydantic.BaseModel] | None = None
    request_media_type: str | None = None
    summary: str | None = None
    tags: tuple[str, ...] = field(default=())
    optional_body: bool = False
    schemes: tuple[SecurityScheme, ...] = ()


def _error_map(errors: Iterable[int | tuple[int, str]]) -> dict[int, tuple[str, ...]]:
    out: dict[int, tuple[str, ...]] = {}
    for item in errors:
        status, code = item if isinstance(item, tuple) else (item, "")
        out[status] = out.get(status, ()) + ((code,) if code else ())
    return out


def api(
    response: Body | None = None,
    *,
    auth: Auth,
    status: int = 200,
    responses: Mapping[int, Body] | None = None,
    request: type[pydantic.BaseModel] | None = None,
    form: type[pydantic.BaseModel] | None = None,
    raw: Raw | None = None,
    query: type[pydantic.BaseModel] | None = None,
    headers: type[pydantic.BaseModel] | None = None,
    errors: Iterable[int | tuple[int, str]] = (),
    validate: bool = True,
    optional_body: bool = False,
    summary: str | None = None,
    tags: Iterable[str] = (),
) -> Callable[[F], F]:
    """Declare a route's contract. Put it directly under ``@bp.get(...)``/``@bp.post``
    (above any auth decorator), so the registered view carries it.

    :param response: the success body (a pydantic model, :class:`Raw`, :class:`NoContent`
        or :class:`Redirect`), answered with ``status``.
    :param auth: the security schemes: the core's names (:mod:`gateway.contract.schemes`)
        or a plugin's :class:`SecurityScheme`; any of them suffices; empty for a public
        route. Non-empty adds 401 and 403.
    :param responses: further success answers by status (``{202: Accepted}``).
    :param request: the JSON body's model, enforced unless ``validate=False``.
    :param form: a form body's model, documentation only (webhooks).
    :param raw: a body of another media type, documentation only.
    :param headers: request headers the view reads (``x_team_id`` is ``X-Team-Id``).
    :param optional_body: the view also takes no body at all (``json_body(optional=True)``).
    :param query: the query string's model (documentation: the view reads it).
    :param errors: further error statuses, or ``(status, CODE)`` pairs. 400 and 503 are
        always listed (any URL may hold a refused NUL; any database may be down); a body
        adds 408 and 413.
    """
    success = dict(responses or {})
    if response is not None:
        success[status] = response
    names, schemes = _auth(auth)
    contract = Contract(
        auth=names,
        schemes=schemes,
        responses=success,
        errors=_error_map(errors),
        request=request or form or (_Untyped if raw else None),
        request_media_type=(
            FORM if form else raw.media_type if raw else "application/json" if request else None
        ),
        summary=summary,
        tags=tuple(tags),
        optional_body=optional_body,
    )

    def decorate(view: F) -> F:
        func: Any = view
        if request is not None and validate:
            func = _validating(view, request)
        if request is not None:
            func = document_request(request)(func)
        if form is not None:
            func = document_request(form, source=DataSource.FORM)(func)
        if query is not None:
            func = document_querystring(query)(func)
        if headers is not None:
            func = document_headers(headers)(func)
        for code, body in success.items():
            if isinstance(body, type) and issubclass(body, pydantic.BaseModel):
                func = document_response(body, code)(func)
        setattr(func, CONTRACT_ATTRIBUTE, contract)
        return func

    return decorate


def field_name(error: Mapping[str, Any]) -> str:
    """``a.b.0`` for pydantic's ``loc`` (``body`` for the body as a whole)."""
    parts = [str(p) for p in error.get("loc", ())]
    return ".".join(parts) or "body"


def problem(name: str, error: Mapping[str, Any]) -> str:
    """The message for one pydantic error, in the wording of the gateway's own checks."""
    if error.get("type") == "missing":
        return f"{name} is required"
    return f"{name}: {error.get('msg', 'invalid value')}"


def validation_error(exc: pydantic.ValidationError) -> ValidationError:
    """The first problem as ``400 VALIDATION_ERROR`` naming its field. pydantic's
    message, never the input (it may be huge, or a secret)."""
    first = exc.errors(include_input=False, include_url=False)[0]
    name = field_name(first)
    return ValidationError(problem(name, first), extra={"field": name})


def _validating(view: F, model: type[pydantic.BaseModel]) -> F:
    """The model is checked when the view reads its body (:func:`gateway.inputs.json_body`),
    not before the view runs: a view authenticates and counts its rate limits first."""

    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.api_request_model = model
        return await view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_body(body: Any, model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    """``body`` as ``model``, or ``400 VALIDATION_ERROR`` naming the field."""
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


class Received(pydantic.BaseModel):
    """The deliveries taken (stored, or recognised as duplicates)."""

    received: int


@dataclass(frozen=True)
class WebhookContract:
    """What a :class:`gateway.webhooks.WebhookSource` documents (``contract=``). Only
    documented: its signature is checked on the raw bytes, and validating first would
    read (and hold) a body the ingestion engine streams.

    :param auth: the signature scheme(s): the plugin's :class:`SecurityScheme`.
    :param body: the form or JSON body's model.
    :param response: the success answer (default ``{"received": n}``).
    """

    auth: tuple[str | SecurityScheme, ...]
    body: type[pydantic.BaseModel] | None = None
    response: Any = Received
    errors: tuple[int | tuple[int, str], ...] = ()
    summary: str | None = None


def webhook_api(contract: WebhookContract | None, form: bool, view: F) -> F:
    """``view`` (a webhook source's route) documented by ``contract``: a source that
    declares none is listed with an untyped body and the default answer."""
    c = contract or WebhookContract(auth=())
    body = c.body
    return api(
        c.response,
        auth=c.auth,
        form=body if form else None,
        request=body if not form else None,
        raw=None if body else Raw(FORM if form else "application/json"),
        validate=False,
        errors=(401, 408, 413, *c.errors),
        summary=c.summary,
        tags=("webhooks",),
    )(view)


PAGES_ATTRIBUTE = "_gateway_pages"


def pages(blueprint: Any) -> Any:
    """Mark ``blueprint`` as pages for people in a browser (HTML forms, not an API): its
    routes are left out of ``/openapi.json`` and so out of the fuzz run. The JSON API
    such pages are built on is documented as usual. Returns the blueprint."""
    setattr(blueprint, PAGES_ATTRIBUTE, True)
    return blueprint


def is_page(app: Any, endpoint: str) -> bool:
    """The route ``endpoint`` belongs to a blueprint marked with :func:`pages`."""
    name = endpoint.rpartition(".")[0]
    return bool(name) and getattr(app.blueprints.get(name), PAGES_ATTRIBUTE, False)
