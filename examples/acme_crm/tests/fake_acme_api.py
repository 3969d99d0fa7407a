"""A loopback Acme: its OAuth server (the kit's RFC 6749 fake) plus the three API routes
the plugin uses, following Acme's documented behaviour: a bearer token on every request
(401 ``{"error": "invalid_token"}`` otherwise), 429 with ``Retry-After`` when told to."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web
from gateway.testing import FakeOAuthServer


class FakeAcme(FakeOAuthServer):
    def __init__(self, **options: Any) -> None:
        super().__init__(account={"sub": "ws_42", "email": "owner@acme.example"}, **options)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.throttle_next = 0  # answer this many API requests with 429
        self._ids = itertools.count(501)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/contacts", self.find_contacts)
        app.router.add_post("/v1/calls", self.create_call)
        app.router.add_get("/v1/calls", self.find_calls)

    def add_contact(self, name: str, phone: str, company: str = "") -> str:
        cid = f"c{next(self._ids)}"
        self.contacts[cid] = {"id": cid, "name": name, "phone": phone, "company": company}
        return cid

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.bearer_grant(request) is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        if self.throttle_next:
            self.throttle_next -= 1
            return web.json_response(
                {"error": "rate_limited"}, status=429, headers={"Retry-After": "30"}
            )
        return None

    async def find_contacts(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        phone = request.query.get("phone")
        hits = [c for c in self.contacts.values() if c["phone"] == phone]
        return web.json_response({"results": hits})

    async def create_call(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        call_id = f"k{next(self._ids)}"
        url = f"https://app.acme-crm.example/calls/{call_id}"
        self.calls[call_id] = {"id": call_id, "url": url, **body}
        return web.json_response(self.calls[call_id], status=201)

    async def find_calls(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        ref = request.query.get("external_ref")
        hits = [c for c in self.calls.values() if c["external_ref"] == ref]
        return web.json_response({"results": hits})
