"""The API contract: every route of the app (every built-in plugin enabled) is in
/openapi.json with its answers; the document is OpenAPI 3.1 with the auth schemes;
model validation answers 400 VALIDATION_ERROR naming the field."""

from __future__ import annotations

from typing import Any

from gateway.contract.openapi import UNDOCUMENTED

ALL_PLUGINS: dict[str, dict[str, Any]] = {
    "admin": {},
    "google_calendar": {"client_id": "g", "client_secret": "g"},
    "hubspot": {"client_id": "h", "client_secret": "h"},
    "salesforce": {"client_id": "s", "client_secret": "s"},
    "microsoft_teams": {"client_id": "m", "client_secret": "m"},
    "twilio_voice": {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32},
    "elevenlabs": {"webhook_secret": "w" * 32, "personalize_secret": "p" * 32},
    "cron": {},
    "jwt_auth": {
        "jwks_url": "https://idp.test/jwks.json",
        "issuer": "https://idp.test/",
        "audience": "gateway",
    },
}

HOW_TO = (
    "declare its contract: put @api(ResponseModel, auth=SIGNED_IN | PUBLIC | ..., "
    "request=BodyModel, errors=(404, 409)) from gateway.contract directly under the "
    "@bp.<method>(...) line of its view (docs/api.md)"
)


def openapi_path(rule: str) -> str:
    import re

    return re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule)


async def test_every_route_is_in_the_document_with_its_answers(make_app: Any) -> None:
    app = await make_app(plugins=ALL_PLUGINS, debug_endpoints=True)
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = doc["paths"].get(path, {}).get(method.lower())
            answers = (op or {}).get("responses", {})
            success = [s for s in answers if s.startswith(("2", "3"))]
            errors = [s for s in answers if s.startswith(("4", "5"))]
            if not op or not success or not errors:
                missing.append(f"{method} {rule.rule} (view {rule.endpoint})")
    assert not missing, (
        "Routes without a declared contract; for each, " + HOW_TO + ":\n  " + ("\n  ".join(missing))
    )
