"""The API contract: every route declares what it takes and answers (``@api``), the app
serves it as OpenAPI 3.1 at ``/openapi.json`` and as a page at ``/docs``
(docs/api.md). A view reads its JSON body with ``json_body()``, which checks it against
the declared request model (plugins may import only from here, not gateway.inputs)."""

from gateway.contract import admin_models
from gateway.contract.install import install
from gateway.contract.models import Accepted, ErrorBody, Page, TeamHeader
from gateway.contract.route import NoContent, Raw, Redirect, WebhookContract, api, is_page, pages
from gateway.contract.schemes import (
    API_TOKEN,
    CRON,
    PUBLIC,
    SESSION,
    SETUP_TOKEN,
    SIGNED_IN,
    SecurityScheme,
    signature_header,
)
from gateway.inputs import json_body

__all__ = [
    "API_TOKEN",
    "CRON",
    "PUBLIC",
    "SESSION",
    "SETUP_TOKEN",
    "SIGNED_IN",
    "Accepted",
    "ErrorBody",
    "NoContent",
    "Page",
    "Raw",
    "Redirect",
    "SecurityScheme",
    "TeamHeader",
    "WebhookContract",
    "admin_models",
    "api",
    "install",
    "is_page",
    "json_body",
    "pages",
    "signature_header",
]
