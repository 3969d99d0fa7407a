"""The API contract: every route of the app (every built-in plugin enabled) is in
/openapi.json with its answers; the document is OpenAPI 3.1 with the auth schemes;
model validation answers 400 VALIDATION_ERROR naming the field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_request

from gateway import hookimpl
from gateway.contract import PUBLIC, SIGNED_IN, api, is_page
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
    "console": {},
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


def undocumented(app: Any, doc: dict[str, Any]) -> list[str]:
    """Every url_map route whose operation is missing, or lists no success or no error
    answer."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED or is_page(app, rule.endpoint):
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = doc["paths"].get(path, {}).get(method.lower())
            answers = (op or {}).get("responses", {})
            success = [s for s in answers if s.startswith(("2", "3"))]
            errors = [s for s in answers if s.startswith(("4", "5"))]
            if not op or not success or not errors:
                missing.append(f"{method} {rule.rule} (view {rule.endpoint})")
    return missing


async def test_every_route_is_in_the_document_with_its_answers(make_app: Any) -> None:
    app = await make_app(plugins=ALL_PLUGINS, debug_endpoints=True)
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    missing = undocumented(app, doc)
    assert not missing, (
        "Routes without a declared contract; for each, " + HOW_TO + ":\n  " + ("\n  ".join(missing))
    )


async def test_the_meta_test_names_an_undeclared_plugin_route(make_app: Any) -> None:
    """A plugin enabled later whose view forgot ``@api`` is caught, by name."""
    app = await make_app(plugins={"notes": {}}, extra_plugins=[("notes", NotesPlugin())])
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    assert undocumented(app, doc) == ["GET /api/notes/raw (view notes.raw)"]


async def test_document_is_openapi_3_1_with_the_auth_schemes(make_app: Any) -> None:
    app = await make_app(plugins=ALL_PLUGINS)
    resp = await app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    doc = await resp.get_json()
    assert doc["openapi"].startswith("3.1")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert schemes["sessionCookie"]["name"] == "gateway_session"
    assert schemes["cronBearer"]["scheme"] == "bearer"
    assert schemes["twilioSignature"]["name"] == "X-Twilio-Signature"
    assert schemes["elevenLabsSignature"]["name"] == "ElevenLabs-Signature"
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error", "code"]

    get_team = doc["paths"]["/api/teams/{team_id}"]["get"]
    assert get_team["security"] == [{"apiToken": []}, {"sessionCookie": []}]
    for status, code in [("401", "UNAUTHORIZED"), ("404", "NOT_FOUND"), ("503", "")]:
        answer = get_team["responses"][status]
        assert answer["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
        assert code in answer["description"]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    cron = doc["paths"]["/api/cron/{name}"]["post"]
    assert cron["security"] == [{"cronBearer": []}]
    assert {"200", "202", "401", "404", "409", "500"} <= set(cron["responses"])
    login = doc["paths"]["/api/auth/login"]["post"]
    assert "Retry-After" in login["responses"]["429"]["headers"]
    assert "Retry-After" in login["responses"]["503"]["headers"]
    assert login["requestBody"]["required"] is True
    jobs = doc["paths"]["/api/jobs"]["get"]["parameters"]
    team_header = next(p for p in jobs if p["in"] == "header")
    assert team_header["name"].lower() == "x-team-id"
    assert team_header["schema"]["type"] == "integer"  # not null: a header is a string
    accept = doc["paths"]["/api/invitations/{token}/accept"]["post"]
    assert accept["requestBody"]["required"] is False  # signed in: no body at all
    assert "password" in str(login["requestBody"])


async def test_webhooks_are_documented_by_their_signature(make_app: Any) -> None:
    app = await make_app(plugins=ALL_PLUGINS)
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    status = doc["paths"]["/api/webhooks/twilio/status"]["post"]
    assert status["security"] == [{"twilioSignature": []}]
    assert list(status["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
    assert "CallStatus" in str(status["requestBody"])
    voice = doc["paths"]["/api/webhooks/twilio/voice"]["post"]
    assert list(voice["responses"]["200"]["content"]) == ["text/xml"]
    post_call = doc["paths"]["/api/webhooks/elevenlabs"]["post"]
    assert post_call["security"] == [{"elevenLabsSignature": []}]
    assert list(post_call["requestBody"]["content"]) == ["application/json"]
    for answer in ("401", "408", "413"):
        assert answer in post_call["responses"]


async def test_webhook_signature_is_checked_before_any_model(make_app: Any) -> None:
    """A body that breaks the documented model, unsigned, is 401 (the signature check
    reads the raw body first), never a 400 from validation."""
    app = await make_app(plugins=ALL_PLUGINS)
    client = app.test_client()
    resp = await client.post("/api/webhooks/twilio/status", form={"Nonsense": "1"})
    assert resp.status_code == 401
    resp = await client.post(
        "/api/webhooks/elevenlabs", data=b"[1,2", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 401


async def test_docs_page_lists_every_operation_without_scripts(make_app: Any) -> None:
    app = await make_app(plugins=ALL_PLUGINS)
    resp = await app.test_client().get("/docs")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/html")
    html = await resp.get_data(as_text=True)
    assert "<script" not in html and "cdn" not in html.lower()
    for path in ("/api/teams/{team_id}/members", "/api/webhooks/twilio/status", "/metrics"):
        assert f"<code>{path}</code>" in html
    assert "X-Twilio-Signature" in html


async def test_a_body_that_breaks_the_model_names_the_field(make_app: Any) -> None:
    from tests.support.identity import make_user, token_for

    app = await make_app()
    client = app.test_client()
    headers = await token_for(await make_user("ann@example.com"))
    cases = [
        ({"name": "Ops", "recording_retention_days": "many"}, "recording_retention_days"),
        ({"name": ["Ops"]}, "name"),
        ({"time_zone": "UTC"}, "name"),
    ]
    for body, field in cases:
        resp = await client.post("/api/teams", json=body, headers=headers)
        assert resp.status_code == 400, body
        answer = await resp.get_json()
        assert answer["code"] == "VALIDATION_ERROR"
        assert answer["field"] == field
        assert set(answer) == {"error", "code", "field"}
        assert "many" not in answer["error"]  # the value is never repeated
    resp = await client.post("/api/auth/tokens", json={"expires_in_days": 0}, headers=headers)
    assert (await resp.get_json())["field"] == "expires_in_days"
    # Authentication still comes first: no token, no validation.
    resp = await client.post("/api/teams", json={"name": ["Ops"]})
    assert resp.status_code == 401


async def test_a_plugin_blueprint_declares_and_gets_validated(make_app: Any) -> None:
    from tests.support.identity import make_user, token_for

    app = await make_app(plugins={"notes": {}}, extra_plugins=[("notes", NotesPlugin())])
    client = app.test_client()
    doc = await (await client.get("/openapi.json")).get_json()
    post = doc["paths"]["/api/notes"]["post"]
    assert "Note" in str(post["responses"]["201"])
    assert "text" in str(post["requestBody"])
    headers = await token_for(await make_user("ann@example.com"))
    resp = await client.post("/api/notes", json={"text": 5}, headers=headers)
    assert resp.status_code == 400
    assert (await resp.get_json())["field"] == "text"
    resp = await client.post("/api/notes", json={"text": "hi"}, headers=headers)
    assert resp.status_code == 201
    assert await resp.get_json() == {"id": 1, "text": "hi"}
    # quart-schema's own decorator answers in the same format.
    resp = await client.put("/api/notes/1", json={"text": None})
    assert resp.status_code == 400
    assert await resp.get_json() == {
        "error": "text: Input should be a valid string",
        "code": "VALIDATION_ERROR",
        "field": "text",
    }


class NoteIn(BaseModel):
    text: str


class Note(BaseModel):
    id: int
    text: str


class NotesPlugin:
    """A third-party plugin's routes: one declared with ``@api``, one with quart-schema's
    own ``validate_request``, one that forgot."""

    @hookimpl
    def register_routes(self, app: Any, config: Any) -> Blueprint:
        bp = Blueprint("notes", __name__)

        @bp.post("/api/notes")
        @api(Note, status=201, auth=SIGNED_IN, request=NoteIn)
        async def add() -> Any:
            from gateway.auth import require_principal
            from gateway.inputs import json_body

            await require_principal()
            body = await json_body()
            return {"id": 1, "text": body["text"]}, 201

        @bp.put("/api/notes/<int:note_id>")
        @api(Note, auth=PUBLIC)
        @validate_request(NoteIn)
        async def replace(note_id: int, data: NoteIn) -> Any:
            return {"id": note_id, "text": data.text}

        @bp.get("/api/notes/raw")
        async def raw() -> Any:
            return {"notes": []}

        return bp


async def test_browser_pages_are_left_out_and_their_json_api_is_in(make_app: Any) -> None:
    """The console's HTML pages (a blueprint marked with ``contract.pages``) are not an
    API: they are not in the document (nor fuzzed); the calls API they read is."""
    app = await make_app(plugins=ALL_PLUGINS)
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    console = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("console.")]
    assert "/console/calls" in console
    assert not [p for p in doc["paths"] if p.startswith("/console")]
    assert {"/api/calls", "/api/calls/{call_id}"} <= set(doc["paths"])


async def test_the_docs_example_route_keeps_the_plugin_api_and_validates(
    make_app: Any, tmp_path: Any
) -> None:
    """docs/api.md's example, as a third-party plugin writes it: it imports only the
    public plugin API, and its body is checked against the declared model."""
    import importlib.util
    import re
    from pathlib import Path

    from gateway.plugin_api import check_plugin, report

    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    example = re.search(r"```python\n(.*?)```", doc, re.S)
    assert example is not None
    package = tmp_path / "notes_doc"
    package.mkdir()
    (package / "__init__.py").write_text(example.group(1))
    violations = check_plugin(package, own="notes_doc", other_plugins=["plugins"])
    assert not violations, report(violations)

    spec = importlib.util.spec_from_file_location("notes_doc", package / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class DocPlugin:
        @hookimpl
        def register_routes(self, app: Any, config: Any) -> Any:
            return module.bp

    app = await make_app(plugins={"notes_doc": {}}, extra_plugins=[("notes_doc", DocPlugin())])
    resp = await app.test_client().post("/api/notes", json={"text": 5})
    assert resp.status_code == 400
    assert await resp.get_json() == {
        "error": "text: Input should be a valid string",
        "code": "VALIDATION_ERROR",
        "field": "text",
    }


async def test_quart_schema_validation_of_a_malformed_body_is_400_not_500(make_app: Any) -> None:
    """docs/api.md lets a plugin use quart-schema's ``validate_request``: bytes that are
    not UTF-8 or JSON nested past Python's recursion limit are the client's mistake,
    answered like any other malformed body."""
    app = await make_app(plugins={"notes": {}}, extra_plugins=[("notes", NotesPlugin())])
    client = app.test_client()
    for body in (b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"text": "\xe9t\xe9"}'):
        resp = await client.put(
            "/api/notes/1", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400, body[:10]
        answer = await resp.get_json()
        assert answer["code"] == "VALIDATION_ERROR"
        assert set(answer) <= {"error", "code", "field"}
