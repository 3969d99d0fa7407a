"""HubSpot as a CRM under the core's contract (gateway.sync): what only HubSpot knows.

- **Find a contact** (``POST /crm/v3/objects/contacts/search``, search bucket): one
  request with four OR'ed filter groups: ``phone`` and ``mobilephone`` equal to the E.164
  number (how the gateway and most dialers write it), and HubSpot's calculated
  ``hs_searchable_calculated_phone_number`` / ``..._mobile_number`` equal to the national
  digits (how HubSpot normalises free text such as "(415) 555-0199"). Every hit is then
  checked on our side: its ``phone`` or ``mobilephone`` must parse (in the team's region)
  to the same E.164 number; the most recently modified match wins.
- **Log a call** (``POST /crm/v3/objects/calls``): a Call engagement with inline
  association to the contact (``HUBSPOT_DEFINED`` type 194, call to contact).
- **The idempotency marker** is a token at the end of ``hs_call_body`` ("Gateway ref:
  rgw..."), found again with ``hs_call_body CONTAINS_TOKEN <marker>`` on
  ``/crm/v3/objects/calls/search``. A custom property would need a schema change in every
  portal (and a scope for it); a body token needs nothing. HubSpot's search lags behind
  writes, so the engine waits ``search_lag_seconds`` before it trusts "not found".
- **Create a contact** (``POST /crm/v3/objects/contacts`` with the E.164 ``phone``) when
  the team's settings allow it.
"""

from __future__ import annotations

import html
from datetime import UTC
from typing import Any

from gateway.sync import (
    CRM,
    CallToLog,
    Contact,
    CRMRequest,
    Logged,
    RateLimit,
    Skip,
    national_digits,
    to_e164,
)
from gateway.team_settings import get_team_settings
from plugins.hubspot.settings import NAME, HubSpotSettings, HubSpotTeamSettings

CONTACTS_SEARCH = "/crm/v3/objects/contacts/search"
CONTACTS = "/crm/v3/objects/contacts"
CALLS = "/crm/v3/objects/calls"
CALLS_SEARCH = "/crm/v3/objects/calls/search"
CALL_TO_CONTACT = 194  # HUBSPOT_DEFINED association type: call -> contact
CONTACT_PROPERTIES = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
    "hubspot_owner_id",
    "notes_last_updated",
    "lastmodifieddate",
]
SEARCH = "search"  # the rate-limit bucket of the search endpoints


async def team_settings(req: CRMRequest) -> HubSpotTeamSettings:
    return await get_team_settings(req.team_id, NAME, HubSpotTeamSettings, app=req.app)


def contact_search(phone: str) -> dict[str, Any]:
    digits = national_digits(phone)
    groups = [
        ("phone", phone),
        ("mobilephone", phone),
        ("hs_searchable_calculated_phone_number", digits),
        ("hs_searchable_calculated_mobile_number", digits),
    ]
    return {
        "filterGroups": [
            {"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}
            for name, value in groups
        ],
        "properties": CONTACT_PROPERTIES,
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        "limit": 10,
    }


class HubSpotCrm:
    def __init__(self, settings: HubSpotSettings) -> None:
        self.settings = settings

    def _record_url(self, req: CRMRequest, object_type: str, record_id: str) -> str | None:
        hub = req.account.get("hub_id")
        if not hub:
            return None
        return f"{self.settings.auth_base_url}/contacts/{hub}/record/{object_type}/{record_id}"

    def _contact(self, req: CRMRequest, hit: dict[str, Any], phone: str) -> Contact:
        props = hit.get("properties") or {}
        first, last = props.get("firstname") or "", props.get("lastname") or ""
        return Contact(
            id=str(hit["id"]),
            name=" ".join(p for p in (first, last) if p) or None,
            first_name=first or None,
            email=props.get("email") or None,
            phone=phone,
            company=props.get("company") or None,
            owner=props.get("hubspot_owner_id") or None,
            last_activity=props.get("notes_last_updated") or None,
            url=self._record_url(req, "0-1", str(hit["id"])),
        )

    async def find_contact(self, req: CRMRequest, phone: str) -> Contact | None:
        region = (await team_settings(req)).default_region
        search = contact_search(phone)
        answer = await req.api.request("POST", CONTACTS_SEARCH, json=search, bucket=SEARCH)
        for hit in (answer.body or {}).get("results") or []:
            props = hit.get("properties") or {}
            numbers = (props.get("phone"), props.get("mobilephone"))
            if any(to_e164(n, region) == phone for n in numbers if n):
                return self._contact(req, hit, phone)
        return None

    async def create_contact(self, req: CRMRequest, call: CallToLog) -> Contact | None:
        if not (await team_settings(req)).create_contacts or not call.customer_number:
            return None
        body = {"properties": {"phone": call.customer_number}}
        made = (await req.api.request("POST", CONTACTS, json=body)).body
        return Contact(
            id=str(made["id"]),
            phone=call.customer_number,
            url=self._record_url(req, "0-1", str(made["id"])),
        )

    def call_body(self, call: CallToLog, transcript: bool) -> str:
        """Summary, transcript excerpt (HTML-escaped: HubSpot renders the body as HTML)
        and the marker, which HubSpot's search tokenizes as one word."""
        parts = []
        if call.summary:
            parts.append(f"<p><b>Summary</b><br>{html.escape(call.summary)}</p>")
        excerpt = call.excerpt(self.settings.transcript_excerpt_chars) if transcript else ""
        if excerpt:
            lines = "<br>".join(html.escape(line) for line in excerpt.splitlines())
            parts.append(f"<p><b>Transcript (excerpt)</b><br>{lines}</p>")
        parts.append(f"<p>Gateway ref: {call.marker}</p>")
        return "".join(parts)

    async def log_call(self, req: CRMRequest, call: CallToLog, contact: Contact | None) -> Logged:
        settings = await team_settings(req)
        if not settings.log_calls:
            raise Skip("the team's HubSpot settings do not log calls")
        started = call.started_at
        properties: dict[str, Any] = {
            "hs_timestamp": started.astimezone(UTC).isoformat().replace("+00:00", "Z")
            if started
            else None,
            "hs_call_title": f"AI agent call ({call.direction or 'unknown direction'})",
            "hs_call_body": self.call_body(call, settings.include_transcript),
            "hs_call_direction": "OUTBOUND" if call.direction == "outbound" else "INBOUND",
            "hs_call_status": "COMPLETED",
            "hs_call_duration": (call.duration_seconds or 0) * 1000,
            "hs_call_from_number": call.from_number,
            "hs_call_to_number": call.to_number,
        }
        body: dict[str, Any] = {
            "properties": {k: v for k, v in properties.items() if v is not None}
        }
        if contact is not None:
            body["associations"] = [
                {
                    "to": {"id": contact.id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": CALL_TO_CONTACT,
                        }
                    ],
                }
            ]
        made = (await req.api.request("POST", CALLS, json=body)).body
        return Logged(id=str(made["id"]), url=self._record_url(req, "0-48", str(made["id"])))

    async def find_logged_call(self, req: CRMRequest, call: CallToLog) -> Logged | None:
        search = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_call_body",
                            "operator": "CONTAINS_TOKEN",
                            "value": call.marker,
                        }
                    ]
                }
            ],
            "properties": ["hs_call_body"],
            "limit": 5,
        }
        answer = await req.api.request("POST", CALLS_SEARCH, json=search, bucket=SEARCH)
        for hit in (answer.body or {}).get("results") or []:
            if call.marker in str((hit.get("properties") or {}).get("hs_call_body", "")):
                return Logged(id=str(hit["id"]), url=self._record_url(req, "0-48", str(hit["id"])))
        return None


def rate_limits(settings: HubSpotSettings) -> tuple[RateLimit, ...]:
    limits = [
        RateLimit(settings.burst_limit, settings.burst_window_seconds),
        RateLimit(settings.search_limit, settings.search_window_seconds, bucket=SEARCH),
    ]
    if settings.daily_limit:
        limits.append(RateLimit(settings.daily_limit, 86400))
    return tuple(limits)


def build_crm(settings: HubSpotSettings) -> CRM:
    hub = HubSpotCrm(settings)
    return CRM(
        name=NAME,
        provider=NAME,
        display_name="HubSpot",
        base_url=settings.api_base_url,
        find_contact=hub.find_contact,
        log_call=hub.log_call,
        find_logged_call=hub.find_logged_call,
        create_contact=hub.create_contact,
        rate_limits=rate_limits(settings),
        search_lag_seconds=settings.search_lag_seconds,
    )
