"""The org's REST API on the loopback Salesforce (mixed into :class:`FakeSalesforce`), as
Salesforce documents it (docs/plugins/salesforce.md lists the sources):

- under ``/services/data/<version>/`` (other versions: 404 ``NOT_FOUND``):
  ``GET search/?q=<SOSL>`` -> ``{"searchRecords": [...]}`` (Contact hits, then Lead hits,
  in ``RETURNING`` order); ``GET query/?q=<SOQL>`` -> ``{"totalSize", "done",
  "records"}``; ``POST sobjects/<Contact|Lead|Task>`` -> 201 ``{"id", "success",
  "errors"}``; ``GET sobjects/<type>/<id>``. Records carry ``attributes`` (type, url)
  and relationship fields (``Account.Name``, ``Owner.Name``) as nested objects.
- Phone fields match a search term by their digits, formatting ignored (equal, or one
  the tail of the other: ``(415) 555-0199`` matches ``4155550199`` and ``+14155550199``).
- Errors are Salesforce's list body ``[{"message", "errorCode", "fields"}]``: 401
  ``INVALID_SESSION_ID`` for an unknown or ended session; 400 ``MALFORMED_SEARCH``,
  ``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE``, ``REQUIRED_FIELD_MISSING``,
  ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``, ``STRING_TOO_LONG``,
  ``INVALID_CROSS_REFERENCE_KEY``.
- Controls: ``index_lag = True`` keeps records created through the API out of SOSL
  results (Salesforce indexes new records for search asynchronously, minutes later;
  SOQL sees them at once); ``request_limit_exceeded = True`` answers every API request 403
  ``REQUEST_LIMIT_EXCEEDED``; ``fail_next_api(status, body)`` answers the next API
  request; ``fail_after_create`` stores the next record and answers 502;
  ``add_instance()`` serves the same org on another port (an instance URL to move to).
- ``api_requests``: every API request (method, path, query, JSON body, bearer, host).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from aiohttp import web

from gateway.testing import serve
from tests.support.fake_salesforce_queries import QueryError, parse_soql, parse_sosl

VERSION = "v62.0"
SESSION_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
PREFIX = {"Contact": "003", "Lead": "00Q", "Task": "00T"}
FIELDS = {
    "Contact": {"Id", "Name", "FirstName", "LastName", "Email", "Phone", "MobilePhone",
                "Account.Name", "Owner.Name", "LastActivityDate", "Description"},
    "Lead": {"Id", "Name", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "Company",
             "Owner.Name", "IsConverted", "LastActivityDate", "Description"},
    "Task": {"Id", "Subject", "TaskSubtype", "CallType", "CallDurationInSeconds",
             "CallDisposition", "CallObject", "Status", "ActivityDate", "Description",
             "WhoId", "WhatId", "Priority"},
}  # fmt: skip
REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company"), "Task": ()}
PICKLISTS = {
    "CallType": {"Inbound", "Outbound", "Internal"},
    "TaskSubtype": {"Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"},
    "Status": {"Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"},
}
MAX_LENGTH = {"Subject": 255, "CallObject": 255, "CallDisposition": 255, "Description": 32000}


def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> web.Response:
    return web.json_response(
        [{"message": message, "errorCode": code, "fields": fields or []}], status=status
    )


def _digits(text: Any) -> str:
    return re.sub(r"\D", "", str(text or ""))


class SalesforceOrgApi:
    """Mixin: the org's records and routes. Needs ``self.access`` (live sessions)."""

    access: dict[str, Any]

    def init_org(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in PREFIX}
        self.api_requests: list[dict[str, Any]] = []
        self.canned_api: list[tuple[int, Any]] = []
        self.request_limit_exceeded = False
        self.fail_after_create = False
        self.index_lag = False
        self.unindexed: set[str] = set()
        self._ids = itertools.count(1)
        self._instances: list[web.AppRunner] = []

    def add_org_routes(self, app: web.Application) -> None:
        base = "/services/data/{version}"
        app.router.add_get(f"{base}/search/", self.search)
        app.router.add_get(f"{base}/query/", self.query)
        app.router.add_post(f"{base}/sobjects/{{sobject}}", self.create)
        app.router.add_get(f"{base}/sobjects/{{sobject}}/{{id}}", self.get_record)

    async def add_instance(self) -> str:
        """Serve this org on another port too; answers its URL."""
        runner, port = await serve(self.make_app())  # type: ignore[attr-defined]
        self._instances.append(runner)
        return f"http://127.0.0.1:{port}"

    async def stop_instances(self) -> None:
        for runner in self._instances:
            await runner.cleanup()
        self._instances.clear()

    # --- test controls ------------------------------------------------------------------

    def _new_id(self, sobject: str) -> str:
        return f"{PREFIX[sobject]}5g{next(self._ids):011d}AAA"

    def add_record(self, sobject: str, **fields: Any) -> str:
        rid = self._new_id(sobject)
        record = {"Id": rid, **fields}
        if sobject in ("Contact", "Lead"):
            name = " ".join(p for p in (fields.get("FirstName"), fields.get("LastName")) if p)
            record.setdefault("Name", name)
            record.setdefault("Owner.Name", "Ada Rep")
        if sobject == "Lead":
            record.setdefault("IsConverted", False)
        self.records[sobject][rid] = record
        return rid

    def add_contact(self, **fields: Any) -> str:
        return self.add_record("Contact", **fields)

    def add_lead(self, **fields: Any) -> str:
        return self.add_record("Lead", **fields)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.records["Task"]

    def fail_next_api(self, status: int, body: Any = None) -> None:
        body = body or [
            {"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}
        ]
        self.canned_api.append((status, body))

    def requests_to(self, method: str, tail: str) -> list[dict[str, Any]]:
        """The API requests whose path ends with ``tail`` (e.g. ``"/sobjects/Task"``)."""
        return [r for r in self.api_requests if r["method"] == method and r["path"].endswith(tail)]

    # --- the gate every API request passes ----------------------------------------------

    async def _gate(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        header = request.headers.get("Authorization", "")
        self.api_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "json": body,
                "bearer": header[7:] if header.startswith("Bearer ") else None,
                "host": request.host,
            }
        )
        if request.match_info.get("version") != VERSION:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if not header.startswith("Bearer ") or header[7:] not in self.access:
            return web.json_response(SESSION_EXPIRED, status=401)
        if self.request_limit_exceeded:
            return web.json_response(LIMIT_EXCEEDED, status=403)
        if self.canned_api:
            status, canned = self.canned_api.pop(0)
            return web.json_response(canned, status=status)
        return None

    # --- reading ------------------------------------------------------------------------

    def _render(self, sobject: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/{VERSION}/sobjects/{sobject}/{record['Id']}",
            }
        }
        for name in fields:
            if "." in name:
                relation, field = name.split(".", 1)
                value = record.get(name)
                out[relation] = (
                    None
                    if value is None
                    else {
                        "attributes": {"type": "User" if relation == "Owner" else relation},
                        field: value,
                    }
                )
            else:
                out[name] = record.get(name)
        return out

    async def search(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused:
            return refused
        try:
            parsed = parse_sosl(request.query.get("q", ""))
            for sobject, fields in parsed.returning:
                self._check_fields(sobject, fields)
        except QueryError as exc:
            return _errors(400, exc.code, exc.message)
        wanted = [_digits(t) for t in parsed.terms if _digits(t)]
        hits = []
        for sobject, fields in parsed.returning:
            for record in self.records[sobject].values():
                if record["Id"] in self.unindexed:
                    continue
                numbers = [_digits(record.get(f)) for f in ("Phone", "MobilePhone")]
                if any(
                    n and w and (n.endswith(w) or w.endswith(n)) for n in numbers for w in wanted
                ):
                    hits.append(self._render(sobject, record, fields))
        return web.json_response({"searchRecords": hits})

    @staticmethod
    def _check_fields(sobject: str, fields: list[str]) -> None:
        if sobject not in FIELDS:
            raise QueryError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        for name in fields:
            if name not in FIELDS[sobject]:
                raise QueryError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")

    async def query(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused:
            return refused
        try:
            parsed = parse_soql(request.query.get("q", ""), FIELDS)
        except QueryError as exc:
            return _errors(400, exc.code, exc.message)
        rows = [r for r in self.records[parsed.sobject].values() if parsed.where(r)]
        rows = rows[: parsed.limit] if parsed.limit is not None else rows
        records = [self._render(parsed.sobject, r, parsed.fields) for r in rows]
        return web.json_response({"totalSize": len(records), "done": True, "records": records})

    async def get_record(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused:
            return refused
        record = self.records.get(request.match_info["sobject"], {}).get(request.match_info["id"])
        if record is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        return web.json_response(
            self._render(request.match_info["sobject"], record, sorted(record))
        )

    # --- creating -----------------------------------------------------------------------

    def _invalid(self, sobject: str, body: dict[str, Any]) -> web.Response | None:
        for name, value in body.items():
            if name not in FIELDS[sobject] or "." in name or name in ("Id", "Name"):
                return _errors(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {sobject}",
                    [name],
                )
            if name in PICKLISTS and sobject == "Task" and value not in PICKLISTS[name]:
                return _errors(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    [name],
                )
            if name in MAX_LENGTH and len(str(value)) > MAX_LENGTH[name]:
                return _errors(400, "STRING_TOO_LONG", f"{name}: data value too large", [name])
        missing = [f for f in REQUIRED[sobject] if not body.get(f)]
        if missing:
            return _errors(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        who = body.get("WhoId")
        if (
            who is not None
            and who not in self.records["Contact"]
            and who not in self.records["Lead"]
        ):
            return _errors(
                400, "INVALID_CROSS_REFERENCE_KEY", "Name ID: id value of incorrect type", ["WhoId"]
            )
        if "ActivityDate" in body and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", str(body["ActivityDate"])
        ):
            return _errors(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date")
        return None

    async def create(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused:
            return refused
        sobject = request.match_info["sobject"]
        if sobject not in PREFIX:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        body = self.api_requests[-1]["json"]
        if not isinstance(body, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
        invalid = self._invalid(sobject, body)
        if invalid:
            return invalid
        rid = self.add_record(sobject, **body)
        if self.index_lag:
            self.unindexed.add(rid)
        if self.fail_after_create:
            self.fail_after_create = False
            return _errors(502, "SERVER_UNAVAILABLE", "Bad gateway")
        return web.json_response({"id": rid, "success": True, "errors": []}, status=201)
