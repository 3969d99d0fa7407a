"""The OpenAPI 3.1 document of the running app: quart-schema's generator over the
url_map (so every enabled plugin's Blueprint is in it), completed with each route's
:class:`~gateway.contract.route.Contract`: security, error answers in the
``{"error", "code"}`` body, non-JSON bodies and unique operation ids."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule

from gateway.contract.route import (
    CONTRACT_ATTRIBUTE,
    Contract,
    NoContent,
    Raw,
    Redirect,
    is_page,
)
from gateway.contract.schemes import SECURITY_SCHEMES
from gateway.errors import HTTP_STATUS_CODES

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ErrorBody",
    "description": "Every error answer. Some add context fields (``field`` names the "
    "request field a 400 is about; ``run_id``, ``status``...).",
    "properties": {
        "error": {"type": "string", "description": "For people; never holds a secret."},
        "code": {"type": "string", "description": "For programs, e.g. VALIDATION_ERROR."},
        "field": {"type": "string"},
    },
    "required": ["error", "code"],
}
# Answered by any route: a NUL in the URL (400), the database down (503).
ALWAYS = (400, 503)
UNDOCUMENTED = {"static"}
RETRY_AFTER = {429, 503}
RETRY_AFTER_HEADER = {
    "description": "seconds to wait before trying again",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}  # Quart's static files: not an API


def error_codes(status: int, extra: tuple[str, ...]) -> list[str]:
    base = HTTP_STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
    return [base, *(c for c in extra if c != base)]


def contract_of(func: Any) -> Contract | None:
    return getattr(func, CONTRACT_ATTRIBUTE, None)


class GatewayOpenAPI(OpenAPIProvider):
    def schema(self) -> dict[str, Any]:
        self._plugin_schemes: dict[str, dict[str, Any]] = {}  # filled by build_paths
        doc = super().schema()
        components = doc.setdefault("components", {})
        components.setdefault("schemas", {})["ErrorBody"] = ERROR_SCHEMA
        components["securitySchemes"] = {**SECURITY_SCHEMES, **self._plugin_schemes}
        doc["paths"] = dict(sorted(doc["paths"].items()))
        return doc

    def generate_rules(self) -> Any:
        for rule in super().generate_rules():
            if rule.endpoint not in UNDOCUMENTED and not is_page(self._app, rule.endpoint):
                yield rule

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        contract = contract_of(self._app.view_functions[rule.endpoint])
        if contract is not None:
            self._plugin_schemes.update((s.name, s.spec) for s in contract.schemes)
        for path_item in paths.values():
            for method, operation in path_item.items():
                operation["operationId"] = f"{method}_{rule.endpoint.replace('.', '_')}"
                if contract is not None:
                    path_item[method] = complete(dict(operation), contract)
        return paths, components


def _body(body: Any) -> dict[str, Any] | None:
    if isinstance(body, Raw):
        return {body.media_type: {"schema": {"type": "string"}}}
    return None


def _without_null(parameter: dict[str, Any]) -> dict[str, Any]:
    """A query or header value is a string or absent, never JSON null: ``int | None``
    in a model is an optional integer there."""
    schema = dict(parameter.get("schema", {}))
    options = [o for o in schema.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        schema.update(options[0])
    if schema.get("default", "") is None:
        del schema["default"]
    return {**parameter, "schema": schema}


def complete(operation: dict[str, Any], contract: Contract) -> dict[str, Any]:
    operation["parameters"] = [
        _without_null(p) if p.get("in") in ("query", "header") else p
        for p in operation.get("parameters", [])
    ]
    responses = dict(operation.get("responses", {}))
    for status, body in contract.responses.items():
        described = responses.get(status, {})
        obj: dict[str, Any] = {"description": described.get("description") or ""}
        obj["description"] = obj["description"] or HTTPStatus(status).phrase
        if body is NoContent:
            pass
        elif body is Redirect:
            obj["headers"] = {"Location": {"schema": {"type": "string"}}}
        elif isinstance(body, Raw):
            obj["content"] = _body(body)
            obj["description"] = body.description or obj["description"]
        else:
            obj["content"] = described.get("content")
        responses[status] = obj
    errors: dict[int, tuple[str, ...]] = {s: () for s in ALWAYS}
    if contract.auth:
        errors |= {401: (), 403: ()}
    if contract.request is not None:
        errors |= {408: (), 413: ()}
    for status, codes in contract.errors.items():
        errors[status] = errors.get(status, ()) + codes
    for status in sorted(errors):
        listed = error_codes(status, errors[status])
        responses[status] = {
            "description": f"{HTTPStatus(status).phrase}: code {' or '.join(listed)}",
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        if status in RETRY_AFTER:
            responses[status]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    operation["responses"] = {str(k): v for k, v in sorted(responses.items())}
    operation["security"] = [{name: []} for name in contract.auth]
    if contract.request is not None and contract.request_media_type:
        body = operation.get("requestBody") or {"content": {}}
        content = body.get("content") or {}
        first: dict[str, Any] = next(iter(content.values()), {})
        schema = first.get("schema", {"type": "string"})
        operation["requestBody"] = {
            "required": not contract.optional_body,
            "content": {contract.request_media_type: {"schema": schema}},
        }
    if contract.summary:
        operation["summary"] = contract.summary
    if contract.tags:
        operation["tags"] = list(contract.tags)
    return operation
