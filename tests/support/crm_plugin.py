"""A CRM plugin written only against the contract (gateway.sync): what a third party
writes to add a CRM. No queue, ledger, token or rate-limit code: the core gives it the
caller lookup, exactly-once call logging and rate limiting."""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.sync import CRM, CallToLog, Contact, CRMRequest, Logged, RateLimit

NAME = "acme_crm"


async def find_contact(req: CRMRequest, phone: str) -> Contact | None:
    found = (await req.api.request("GET", "/api/contacts", params={"phone": phone})).body
    if not found["results"]:
        return None
    hit = found["results"][0]
    return Contact(id=hit["id"], name=hit["name"], company=hit["company"], phone=phone)


async def create_contact(req: CRMRequest, call: CallToLog) -> Contact | None:
    body = {"name": call.customer_number, "phone": call.customer_number}
    made = (await req.api.request("POST", "/api/contacts", json=body)).body
    return Contact(id=made["id"], phone=call.customer_number)


async def log_call(req: CRMRequest, call: CallToLog, contact: Contact | None) -> Logged:
    body = {"contact_id": contact.id if contact else None, "summary": call.summary}
    made = (await req.api.request("POST", "/api/calls", json={**body, "ref": call.marker})).body
    return Logged(id=made["id"], url=f"https://crm.example/calls/{made['id']}")


async def find_logged_call(req: CRMRequest, call: CallToLog) -> Logged | None:
    found = (await req.api.request("GET", "/api/calls", params={"ref": call.marker})).body
    ids = [hit["id"] for hit in found["results"]]
    return Logged(id=ids[0], url=f"https://crm.example/calls/{ids[0]}") if ids else None


class AcmeCrm:
    """``make_app(extra_plugins=[(NAME, AcmeCrm(server.url))])``."""

    def __init__(self, base_url: Any, limits: tuple[RateLimit, ...] = (), **options: Any):
        self.base_url, self.limits, self.options = base_url, limits, options

    @hookimpl
    def register_crms(self, config: Any) -> list[CRM]:
        return [
            CRM(
                name=NAME,
                provider=NAME,
                display_name="Acme CRM",
                base_url=self.base_url,
                find_contact=find_contact,
                log_call=log_call,
                find_logged_call=find_logged_call,
                create_contact=create_contact,
                rate_limits=self.limits,
                **self.options,
            )
        ]
