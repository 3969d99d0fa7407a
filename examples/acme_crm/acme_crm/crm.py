"""Acme as a CRM under the gateway's contract (``gateway.sync``): only what Acme knows.

Acme's API (bearer token; JSON):

- ``GET /v1/contacts?phone=<E.164>`` -> ``{"results": [contact, ...]}``
- ``POST /v1/calls`` ``{"contact_id", "type", "note", "external_ref"}`` -> 201 call
- ``GET /v1/calls?external_ref=<ref>`` -> ``{"results": [call, ...]}``

The core does the rest: the ``voice.call.analyzed`` subscription, exactly-once logging
through the effects ledger, tokens and their refresh (a 401 refreshes and retries once),
the rate limit below across processes, 429 ``Retry-After``, and the caller lookup.
"""

from __future__ import annotations

from gateway.sync import CRM, CallToLog, Contact, CRMRequest, Logged, RateLimit, Skip
from gateway.team_settings import get_team_settings

from acme_crm.settings import NAME, AcmeSettings, AcmeTeamSettings


async def find_contact(req: CRMRequest, phone: str) -> Contact | None:
    found = (await req.api.request("GET", "/v1/contacts", params={"phone": phone})).body
    if not found["results"]:
        return None
    hit = found["results"][0]
    return Contact(
        id=str(hit["id"]),
        name=hit.get("name"),
        company=hit.get("company"),
        phone=phone,
        url=hit.get("url"),
    )


async def log_call(req: CRMRequest, call: CallToLog, contact: Contact | None) -> Logged:
    team = await get_team_settings(req.team_id, NAME, AcmeTeamSettings, app=req.app)
    if not team.log_calls:
        raise Skip("the team's settings say not to log calls")
    note = call.summary if team.include_summary and call.summary else ""
    body = {
        "contact_id": contact.id if contact else None,
        "type": team.call_type,
        "note": note,
        "outcome": call.outcome,
        "duration_seconds": call.duration_seconds,
        "external_ref": call.marker,  # found again by find_logged_call after a crash
    }
    made = (await req.api.request("POST", "/v1/calls", json=body)).body
    return Logged(id=str(made["id"]), url=made.get("url"))


async def find_logged_call(req: CRMRequest, call: CallToLog) -> Logged | None:
    params = {"external_ref": call.marker}
    found = (await req.api.request("GET", "/v1/calls", params=params)).body
    hits = found["results"]
    return Logged(id=str(hits[0]["id"]), url=hits[0].get("url")) if hits else None


def build_crm(settings: AcmeSettings) -> CRM:
    return CRM(
        name=NAME,
        provider=NAME,  # the OAuth connection whose tokens the API calls use
        display_name="Acme CRM",
        base_url=str(settings.api_url),
        find_contact=find_contact,
        log_call=log_call,
        find_logged_call=find_logged_call,
        rate_limits=(RateLimit(settings.requests_per_second, 1),),
    )
