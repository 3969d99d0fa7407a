"""Schemathesis over every operation of /openapi.json, against the app in-process
(ASGI), with seeded data and real credentials: no answer may be a 5xx, have a status
the document does not list, or a body that breaks its schema.

Credentials per operation come from its declared security: the super admin's API
token, the cron secret, the setup token, the personalize secret; Twilio and ElevenLabs
webhooks are signed here (the real ``twilio`` library; ElevenLabs' HMAC), so their
routes are fuzzed past the signature check too. Half the cases use the seeded ids in
the path (team, member, number, agent, event, job...) so the fuzzer reaches the rows
as well as the 404s. Cases are valid and invalid (schemathesis' positive and negative
modes), on SQLite and on PostgreSQL. ``FUZZ_EXAMPLES`` (default 20) bounds each
operation's cases.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from quart import Blueprint
from quart import request as http_request
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from gateway import hookimpl
from gateway.app import create_app
from gateway.config import load_config
from gateway.contract import PUBLIC, api
from tests.support.fake_elevenlabs import headers as elevenlabs_headers
from tests.test_api_contract import ALL_PLUGINS

PUBLIC_URL = "https://gateway.test"
TWILIO_SID = ALL_PLUGINS["twilio_voice"]["account_sid"]
TWILIO_TOKEN = ALL_PLUGINS["twilio_voice"]["auth_token"]
ELEVENLABS_SECRET = ALL_PLUGINS["elevenlabs"]["webhook_secret"]
PERSONALIZE_SECRET = ALL_PLUGINS["elevenlabs"]["personalize_secret"]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def seed(app: Any) -> dict[str, Any]:
    """A super admin (through the setup route), their API token, a team with a number,
    an agent and an invitation, and one Twilio call's events and jobs."""
    gw = app.extensions["gateway"]
    ids: dict[str, Any] = {}
    with asgi.get_client(app) as http:
        base = f"http://{asgi.HOST}"

        def ok(resp: Any) -> Any:
            assert resp.status_code < 300, (resp.request.url, resp.status_code, resp.text)
            return resp.json() if resp.content else None

        made = ok(
            http.post(
                f"{base}/api/setup-super-admin",
                json={"email": "root@example.com", "name": "Root"},
                headers={"X-Setup-Token": gw.secrets.setup_token},
            )
        )
        auth = {"Authorization": f"Bearer {made['api_token']}"}
        ids["user_id"] = made["user"]["id"]
        # A token of its own for the fuzzer: the setup one may be revoked by a case.
        token = ok(http.post(f"{base}/api/auth/tokens", json={"label": "fuzz"}, headers=auth))
        ids["api_token"], ids["token_id"] = token["token"], token["api_token"]["id"]
        team = ok(http.post(f"{base}/api/teams", json={"name": "Fuzz"}, headers=auth))["team"]
        ids["team_id"] = team["id"]
        url = f"{base}/api/teams/{team['id']}"
        ids["number_id"] = ok(
            http.post(f"{url}/phone-numbers", json={"number": "+14155550100"}, headers=auth)
        )["phone_number"]["id"]
        ids["agent_pk"] = ok(
            http.post(f"{url}/agents", json={"agent_id": "agent_fuzz"}, headers=auth)
        )["agent"]["id"]
        invitation = ok(
            http.post(f"{url}/invitations", json={"email": "new@example.com"}, headers=auth)
        )["invitation"]
        ids["invitation_id"], ids["token"] = invitation["id"], invitation["token"]
        form = {
            "AccountSid": TWILIO_SID,
            "CallSid": "CA" + "1" * 32,
            "From": "+14155550199",
            "To": "+14155550100",
            "CallStatus": "completed",
            "CallDuration": "30",
        }
        path = "/api/webhooks/twilio/status"
        sig = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + path, form)
        ok(http.post(base + path, data=form, headers={"X-Twilio-Signature": sig}))
        events = ok(http.get(f"{base}/api/events", headers=auth))["items"]
        ids["event_id"] = events[0]["id"] if events else 1
        jobs = ok(http.get(f"{base}/api/jobs", headers=auth))["items"]
        ids["job_id"] = jobs[0]["id"] if jobs else 1
    return ids


def credentials(case: Any, ids: dict[str, Any], app: Any) -> tuple[dict[str, str], dict]:
    """Headers (and request keyword arguments) for the case's declared security."""
    gw = app.extensions["gateway"]
    schemes = {name for req in case.operation.definition.raw.get("security", []) for name in req}
    if "apiToken" in schemes or "metricsToken" in schemes:
        return {"Authorization": f"Bearer {ids['api_token']}"}, {}
    if "cronBearer" in schemes:
        return {"Authorization": f"Bearer {gw.secrets.cron_secret}"}, {}
    if "setupToken" in schemes:
        return {"X-Setup-Token": gw.secrets.setup_token}, {}
    if "webhookSecret" in schemes:
        return {"X-Webhook-Secret": PERSONALIZE_SECRET}, {}
    if "twilioSignature" in schemes and isinstance(case.body, dict):
        # A form has no nulls (the schema's optional fields): an absent field is absent.
        form = {k: v for k, v in case.body.items() if v is not None}
        if all(isinstance(v, str) for v in form.values()):  # else sent unsigned: 401
            case.body = {**form, "AccountSid": TWILIO_SID}
            url = PUBLIC_URL + case.path  # no path parameters on webhook routes
            if case.query:
                url += "?" + urlencode(case.query, doseq=True)
            sig = RequestValidator(TWILIO_TOKEN).compute_signature(url, case.body)
            return {"X-Twilio-Signature": sig}, {}
    if "elevenLabsSignature" in schemes:
        raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        signed = elevenlabs_headers(raw, int(time.time()), ELEVENLABS_SECRET)
        return signed, {"json": None, "data": raw}
    return {}, {}


REAL_PATH_VALUES = {
    "team_id",
    "user_id",
    "number_id",
    "agent_pk",
    "invitation_id",
    "event_id",
    "job_id",
    "token",
}
FIXED = {"provider": "hubspot", "plugin": "elevenlabs", "name": "cleanup-recordings"}


def use_seeded(case: Any, ids: dict[str, Any]) -> None:
    for name in list(case.path_parameters or {}):
        if name in REAL_PATH_VALUES:
            case.path_parameters[name] = str(ids[name])
        elif name in FIXED:
            case.path_parameters[name] = FIXED[name]
    if case.query is not None and "team_id" in case.query:
        case.query["team_id"] = ids["team_id"]


def fuzz(app: Any, operations: list[Any], ids: dict[str, Any]) -> list[str]:
    """Every operation's cases in turn; the failures, one entry per operation."""
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases, seeded=st.booleans())
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def run(case: Any, seeded: bool) -> None:
            if seeded:
                use_seeded(case, ids)
            headers, extra = credentials(case, ids, app)
            response = case.call(headers=headers, **extra)
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one report for all operations
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    for label, statuses in sorted(seen.items()):
        print(label, sorted(statuses))  # shown with -s: what the run reached
    return failures


def settings_for(tmp_path: Path, url: str, plugins: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {
            "data_dir": str(tmp_path / "data"),
            "database_url": url,
            "auto_migrate": True,
            "run_worker": False,
            "run_scheduler": False,
            "public_url": PUBLIC_URL,
            "debug_endpoints": True,
        },
        "plugins": plugins,
    }


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_every_operation_holds_to_the_document(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "postgres":  # int4 ids, NUL bytes: where PostgreSQL refuses more
        url = request.getfixturevalue("pg_database")
    else:
        url = f"sqlite://{tmp_path / 'gateway.db'}"
    app = create_app(load_config(data=settings_for(tmp_path, url, ALL_PLUGINS), environ={}))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        ids = seed(app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 50
        # Deletions last, so they do not take the seeded rows from the other operations;
        # revoking tokens the very last, as it may revoke the fuzzer's own.
        operations.sort(
            key=lambda op: (op.method.upper() == "DELETE", "{token_id}" in op.path, op.label)
        )
        failures = fuzz(app, operations, ids)
        assert not failures, "\n\n".join(failures)
    finally:
        asgi.shutdown_lifespans()


class Quotient(BaseModel):
    value: int


class DivideQuery(BaseModel):
    n: int = Field(1, ge=0, le=10)


class CanaryPlugin:
    """Two routes with the defects the run exists to find."""

    @hookimpl
    def register_routes(self, app: Any, config: Any) -> Blueprint:
        bp = Blueprint("canary", __name__)

        @bp.get("/api/canary/divide")
        @api(Quotient, auth=PUBLIC, query=DivideQuery)
        async def divide() -> Any:
            return {"value": 100 // int(http_request.args.get("n", "1"))}  # n=0: a 500

        @bp.get("/api/canary/shape")
        @api(Quotient, auth=PUBLIC)
        async def shape() -> Any:
            return {"value": "many"}  # not the documented integer

        return bp


def test_the_run_finds_a_server_error_and_a_broken_schema(tmp_path: Path) -> None:
    """The run can fail: a 500 and a body off its schema are both reported, by route."""
    url = f"sqlite://{tmp_path / 'gateway.db'}"
    config = load_config(data=settings_for(tmp_path, url, {"canary": {}}), environ={})
    app = create_app(config, extra_plugins=[("canary", CanaryPlugin())])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        operations = [r.ok() for r in schema.get_all_operations() if "/canary/" in r.ok().path]
        failures = fuzz(app, operations, {})
    finally:
        asgi.shutdown_lifespans()
    assert len(failures) == 2
    divide, shape = sorted(failures)
    assert divide.startswith("GET /api/canary/divide") and "Server error" in divide
    assert shape.startswith("GET /api/canary/shape") and "violates schema" in shape
