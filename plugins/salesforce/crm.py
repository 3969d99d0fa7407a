"""Salesforce as a CRM under the core's contract (gateway.sync): what only Salesforce knows.
Every request goes to the org's ``instance_url`` (the connection's account data, read
again after each token refresh) under ``/services/data/<api_version>``.

- **Find a contact** (SOSL, ``GET .../search/?q=FIND {...} IN PHONE FIELDS RETURNING
  Contact(...), Lead(...)``): the E.164 number and its national digits, SOSL's reserved
  characters escaped. Salesforce keeps phone numbers as typed, so every hit is checked
  on our side: its ``Phone`` or ``MobilePhone`` must parse (in the team's region) to the
  caller's E.164 number. A Contact wins over a Lead. When the team lets the gateway
  create records, a SOQL query on the exact E.164 number follows a miss: SOSL's index
  lags behind writes (minutes), SOQL does not, so a record the gateway created a moment
  ago is found and never created twice.
- **Log a call** (``POST .../sobjects/Task``): a completed Task with ``TaskSubtype=Call``,
  ``CallType``, ``CallDurationInSeconds``, ``CallDisposition`` (the outcome), ``WhoId``
  (the contact or lead), subject and description (summary, transcript excerpt).
- **The idempotency marker** is the Task's ``CallObject``, a standard text field (255)
  meant for a telephony system's call id, filterable, so ``find_logged_call`` is one
  SOQL query (``SELECT Id FROM Task WHERE CallObject = '<marker>'``) that sees a record
  the moment it is created. An external-id field would need a custom field in every org.
- **Errors**: 401 ``INVALID_SESSION_ID`` refreshes the session (the session's
  ``token_rejected``); 403 ``REQUEST_LIMIT_EXCEEDED`` (the org's rolling 24-hour API
  allocation is used up) defers the job without counting an attempt; other 4xx, e.g.
  ``REQUIRED_FIELD_MISSING``, are dead-lettered with Salesforce's message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway import get_gateway
from gateway.events import RetryLater
from gateway.sync import (
    CRM,
    CallToLog,
    Contact,
    CRMRequest,
    Logged,
    ProviderError,
    ProviderResponse,
    RateLimit,
    Skip,
    national_digits,
    to_e164,
)
from gateway.team_settings import get_team_settings
from plugins.salesforce.oauth import session_expired
from plugins.salesforce.settings import NAME, SalesforceSettings, SalesforceTeamSettings

log = logging.getLogger("plugins.salesforce")

CONTACT_FIELDS = (
    "Id",
    "Name",
    "FirstName",
    "Email",
    "Phone",
    "MobilePhone",
    "Account.Name",
    "Owner.Name",
    "LastActivityDate",
)
LEAD_FIELDS = ("Id", "Name", "FirstName", "Email", "Phone", "MobilePhone", "Company", "Owner.Name")
RETURNING = {"Contact": CONTACT_FIELDS, "Lead": LEAD_FIELDS}
# Reserved in a SOSL search query; each must be preceded by a backslash.
SOSL_RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
NEW_RECORD_NAME = "Unknown caller"  # LastName (required) of a record made for a new caller
NEW_LEAD_COMPANY = "Unknown"  # Company is required on a Lead
DESCRIPTION_MAX = 32_000  # Task.Description is a long text area of 32,000 characters
LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
DUPLICATES = "DUPLICATES_DETECTED"


def sosl_escape(term: str) -> str:
    return "".join(f"\\{c}" if c in SOSL_RESERVED else c for c in term)


def soql_quote(value: str) -> str:
    """A SOQL string literal: ``'`` and ``\\`` are reserved and escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def phone_search(phone: str) -> str:
    """The SOSL query for an E.164 number: the number as the gateway writes it, or its
    national digits (how most records hold it: "(415) 555-0199")."""
    variants = list(dict.fromkeys((phone, national_digits(phone))))
    terms = " OR ".join(sosl_escape(v) for v in variants if v)
    objects = ", ".join(f"{name}({', '.join(fields)})" for name, fields in RETURNING.items())
    return f"FIND {{{terms}}} IN PHONE FIELDS RETURNING {objects}"


def exact_phone_query(kind: str, phone: str) -> str:
    """SOQL for records holding ``phone`` exactly (as the gateway writes it)."""
    quoted = soql_quote(phone)
    where = f"(Phone = {quoted} OR MobilePhone = {quoted})"
    if kind == "Lead":
        where = f"IsConverted = false AND {where}"
    # SOQL, not SQL; the only value in it is quoted by soql_quote.
    return f"SELECT {', '.join(RETURNING[kind])} FROM {kind} WHERE {where} LIMIT 10"  # noqa: S608


def _related(record: Mapping[str, Any], name: str) -> str | None:
    related = record.get(name)
    return (related.get("Name") or None) if isinstance(related, Mapping) else None


async def team_settings(req: CRMRequest) -> SalesforceTeamSettings:
    return await get_team_settings(req.team_id, NAME, SalesforceTeamSettings, app=req.app)


class SalesforceCrm:
    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.data = f"/services/data/{settings.api_version}"

    async def call(self, req: CRMRequest, method: str, path: str, **kw: Any) -> ProviderResponse:
        """``req.api.request`` under the version's path; the org's request limit
        becomes a deferral that does not count as an attempt."""
        try:
            return await req.api.request(method, f"{self.data}{path}", **kw)
        except ProviderError as exc:
            if exc.status == 403 and exc.marker == LIMIT_EXCEEDED:
                log.warning(
                    "salesforce: the org of team %s answered %s; its jobs wait %ss",
                    req.team_id,
                    LIMIT_EXCEEDED,
                    self.settings.limit_retry_seconds,
                )
                raise RetryLater(
                    float(self.settings.limit_retry_seconds),
                    f"Salesforce answered {LIMIT_EXCEEDED}: the org's API requests for "
                    "the last 24 hours are used up",
                    count_attempt=False,
                ) from None
            raise

    def record_url(self, req: CRMRequest, kind: str, record_id: str) -> str | None:
        instance = req.api.base_url or str(req.account.get("instance_url") or "")
        return f"{instance}/lightning/r/{kind}/{record_id}/view" if instance else None

    def _contact(self, req: CRMRequest, record: Mapping[str, Any], phone: str) -> Contact:
        kind = str((record.get("attributes") or {}).get("type") or "Contact")
        company = record.get("Company") if kind == "Lead" else _related(record, "Account")
        return Contact(
            id=str(record["Id"]),
            name=record.get("Name") or None,
            first_name=record.get("FirstName") or None,
            email=record.get("Email") or None,
            phone=phone,
            company=company or None,
            owner=_related(record, "Owner"),
            last_activity=record.get("LastActivityDate") or None,
            url=self.record_url(req, kind, str(record["Id"])),
            variables={"record_type": kind},
        )

    @staticmethod
    def _best(records: list[Any], phone: str, region: str) -> Mapping[str, Any] | None:
        """The first Contact holding ``phone``, else the first Lead."""
        matches: dict[str, Mapping[str, Any]] = {}
        for record in records:
            if not isinstance(record, Mapping) or not record.get("Id"):
                continue
            kind = str((record.get("attributes") or {}).get("type") or "")
            numbers = (record.get("Phone"), record.get("MobilePhone"))
            if kind in RETURNING and any(to_e164(n, region) == phone for n in numbers if n):
                matches.setdefault(kind, record)
        return matches.get("Contact") or matches.get("Lead")

    async def find_contact(self, req: CRMRequest, phone: str) -> Contact | None:
        settings = await team_settings(req)
        answer = (await self.call(req, "GET", "/search/", params={"q": phone_search(phone)})).body
        # API 37.0 and later wrap the hits in "searchRecords"; older versions answer a list.
        records = answer.get("searchRecords") if isinstance(answer, Mapping) else answer
        best = self._best(list(records or []), phone, settings.default_region)
        if best is None and settings.create_contacts:
            kind = settings.new_record_type
            query = exact_phone_query(kind, phone)
            found = (await self.call(req, "GET", "/query/", params={"q": query})).body or {}
            hits = [{"attributes": {"type": kind}, **r} for r in found.get("records") or []]
            best = self._best(hits, phone, settings.default_region)
        return self._contact(req, best, phone) if best is not None else None

    async def create_contact(self, req: CRMRequest, call: CallToLog) -> Contact | None:
        settings = await team_settings(req)
        if not settings.create_contacts or not call.customer_number:
            return None
        kind = settings.new_record_type
        fields: dict[str, Any] = {"LastName": NEW_RECORD_NAME, "Phone": call.customer_number}
        if kind == "Lead":
            fields["Company"] = NEW_LEAD_COMPANY
        try:
            made = (await self.call(req, "POST", f"/sobjects/{kind}", json=fields)).body
        except ProviderError as exc:
            if exc.marker == DUPLICATES:  # the org's duplicate rules know this caller
                raise Skip(f"Salesforce's duplicate rules refused a new {kind}") from None
            raise
        return Contact(
            id=str(made["id"]),
            phone=call.customer_number,
            url=self.record_url(req, kind, str(made["id"])),
            variables={"record_type": kind},
        )

    def description(self, call: CallToLog, transcript: bool) -> str:
        parts = []
        if call.from_number or call.to_number:
            parts.append(f"From {call.from_number or 'unknown'} to {call.to_number or 'unknown'}")
        if call.summary:
            parts.append(f"Summary:\n{call.summary.strip()}")
        excerpt = call.excerpt(self.settings.transcript_excerpt_chars) if transcript else ""
        if excerpt:
            parts.append(f"Transcript (excerpt):\n{excerpt}")
        return "\n\n".join(parts)[:DESCRIPTION_MAX]

    async def log_call(self, req: CRMRequest, call: CallToLog, contact: Contact | None) -> Logged:
        settings = await team_settings(req)
        if not settings.log_calls:
            raise Skip("the team's Salesforce settings do not log calls")
        direction = "Outbound" if call.direction == "outbound" else "Inbound"
        started = call.started_at or get_gateway(req.app).clock.now()
        task: dict[str, Any] = {
            "Subject": f"AI agent call ({direction.lower()})",
            "TaskSubtype": "Call",
            "CallType": direction,
            "CallDurationInSeconds": int(call.duration_seconds or 0),
            "CallDisposition": (call.outcome or "unknown")[:255],
            "CallObject": call.marker,
            "Status": settings.task_status,
            "ActivityDate": started.date().isoformat(),
            "Description": self.description(call, settings.include_transcript),
        }
        if contact is not None:
            task["WhoId"] = contact.id
        made = (await self.call(req, "POST", "/sobjects/Task", json=task)).body
        return Logged(id=str(made["id"]), url=self.record_url(req, "Task", str(made["id"])))

    async def find_logged_call(self, req: CRMRequest, call: CallToLog) -> Logged | None:
        query = f"SELECT Id FROM Task WHERE CallObject = {soql_quote(call.marker)}"  # noqa: S608
        found = (await self.call(req, "GET", "/query/", params={"q": query})).body or {}
        for record in found.get("records") or []:
            return Logged(id=str(record["Id"]), url=self.record_url(req, "Task", record["Id"]))
        return None


def instance_url(account: Mapping[str, Any]) -> str:
    """The CRM's base URL: the org's instance, as the connection stores it."""
    return str(account.get("instance_url") or "")


def build_crm(settings: SalesforceSettings) -> CRM:
    sf = SalesforceCrm(settings)
    return CRM(
        name=NAME,
        provider=NAME,
        display_name="Salesforce",
        base_url=instance_url,
        find_contact=sf.find_contact,
        log_call=sf.log_call,
        find_logged_call=sf.find_logged_call,
        create_contact=sf.create_contact,
        # One allocation per org for a rolling 24 hours; the gateway keeps to its share.
        rate_limits=(RateLimit(settings.daily_limit, 86_400),),
        token_rejected=session_expired,
    )
