"""Wiring the contract into an app: quart-schema (its generator and response
conversion, no UI of its own: they load scripts from CDNs), the two routes, and
quart-schema's own validation errors in the gateway's error format."""

from __future__ import annotations

from typing import Any

import pydantic
from quart import Quart, Response, current_app, jsonify
from quart.wrappers import Request
from quart_schema import QuartSchema, RequestSchemaValidationError

from gateway.contract import docs_page
from gateway.contract.openapi import GatewayOpenAPI
from gateway.contract.route import NoContent, Raw, api, validation_error
from gateway.contract.schemes import PUBLIC
from gateway.errors import ValidationError
from gateway.responses import gateway_error_response

DOC_KEY = "gateway_openapi"


def document(app: Quart) -> dict[str, Any]:
    """The app's OpenAPI document, built once (routes are fixed once the app is made)."""
    doc = app.extensions.get(DOC_KEY)
    if doc is None:
        doc = app.extensions[DOC_KEY] = app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    return doc


class MalformedJsonIs400(Request):
    """``get_json`` (what quart-schema's ``validate_request`` reads) answers a body that
    is not UTF-8, or nested past the recursion limit, as any malformed JSON: Quart only
    turns a ``ValueError`` of the parser into ``400``, and lets these two through as 500."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except (UnicodeDecodeError, RecursionError) as error:
            if silent:
                return None
            return self.on_json_loading_failed(error)


class OpenAPIDocument(pydantic.BaseModel):
    """This document (OpenAPI 3.1)."""

    model_config = {"extra": "allow"}
    openapi: str
    paths: dict[str, Any]


def install(app: Quart, *, title: str, version: str) -> None:
    # On top of the request class already chosen (the webhooks' bounded body, if any).
    if not issubclass(app.request_class, MalformedJsonIs400):
        app.request_class = type(  # type: ignore[assignment]
            "GatewayRequest", (MalformedJsonIs400, app.request_class), {}
        )
    QuartSchema(
        app,
        openapi_path=None,
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": title, "version": version},
        openapi_provider_class=GatewayOpenAPI,
    )

    @api(OpenAPIDocument, auth=PUBLIC, summary="This API's OpenAPI 3.1 document")
    async def openapi() -> Response:
        return jsonify(document(current_app))

    @api(Raw("text/html"), auth=PUBLIC, summary="The API reference as a page")
    async def docs() -> Response:
        html = docs_page.render(document(current_app))
        return Response(html, content_type="text/html; charset=utf-8")

    app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])
    app.add_url_rule("/docs", "api_docs", docs, methods=["GET"])

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> Response:
        # A plugin may use quart-schema's own validate_* decorators: same answer as ours.
        inner = exc.validation_error
        if isinstance(inner, pydantic.ValidationError):
            return gateway_error_response(validation_error(inner))
        return gateway_error_response(ValidationError("Invalid request", extra={"field": "body"}))


__all__ = ["NoContent", "document", "install"]
