"""A loopback "Acme CRM": an OAuth server (:class:`FakeOAuthServer`) plus a tiny CRM API,
for the sync engine's tests of the contract with :mod:`tests.support.crm_plugin`.

API (bearer token required; 401 ``{"error": "invalid_token"}`` otherwise):

- ``GET /api/contacts?phone=<E.164>`` -> ``{"results": [contact, ...]}``
- ``POST /api/contacts`` ``{"name", "phone"}`` -> 201 contact
- ``POST /api/calls`` ``{"contact_id", "summary", "ref"}`` -> 201 ``{"id", ...}``
- ``GET /api/calls?ref=<marker>`` -> ``{"results": [call, ...]}``

Controls: ``fail_next(status, headers)`` answers the next API request with an error
(before doing anything); ``fail_after_create`` answers 502 to the next call creation
*after* storing it (the provider created it, the gateway never heard); ``limit`` /
``window`` answer 429 beyond ``limit`` requests per ``window`` seconds; ``requests``
records every API request (method, path, query, JSON, monotonic time).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from aiohttp import web

from gateway.testing import CannedResponse, FakeOAuthServer


class FakeCrm(FakeOAuthServer):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.canned: list[CannedResponse] = []
        self.fail_after_create = False
        self.limit: int | None = None
        self.window = 1.0
        self.throttled = 0
        self.search_delay = 0.0  # seconds the contact search takes (a slow CRM)
        self._ids = itertools.count(1001)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/contacts", self.find_contacts)
        app.router.add_post("/api/contacts", self.create_contact)
        app.router.add_post("/api/calls", self.create_call)
        app.router.add_get("/api/calls", self.find_calls)

    def add_contact(self, name: str, phone: str, company: str = "") -> str:
        cid = str(next(self._ids))
        self.contacts[cid] = {"id": cid, "name": name, "phone": phone, "company": company}
        return cid

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.canned.append(CannedResponse(status, {"error": f"http_{status}"}, headers or {}))

    async def _gate(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "json": body,
                "at": time.monotonic(),
            }
        )
        if self.bearer_grant(request) is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        if self.canned:
            canned = self.canned.pop(0)
            return web.json_response(canned.body, status=canned.status, headers=canned.headers)
        if self.limit is not None:
            now = time.monotonic()
            recent = [r for r in self.requests[:-1] if r["at"] > now - self.window]
            if len(recent) >= self.limit:
                self.throttled += 1
                return web.json_response(
                    {"error": "rate_limited"}, status=429, headers={"Retry-After": "1"}
                )
        return None

    async def find_contacts(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        if self.search_delay:
            await asyncio.sleep(self.search_delay)
        phone = request.query.get("phone")
        hits = [c for c in self.contacts.values() if c["phone"] == phone]
        return web.json_response({"results": hits})

    async def create_contact(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        body = self.requests[-1]["json"] or {}
        cid = self.add_contact(str(body.get("name", "")), str(body.get("phone", "")))
        return web.json_response(self.contacts[cid], status=201)

    async def create_call(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        body = dict(self.requests[-1]["json"] or {})
        call_id = str(next(self._ids))
        self.calls[call_id] = {"id": call_id, **body}
        if self.fail_after_create:
            self.fail_after_create = False
            return web.json_response({"error": "bad_gateway"}, status=502)
        return web.json_response(self.calls[call_id], status=201)

    async def find_calls(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        ref = request.query.get("ref")
        return web.json_response({"results": [c for c in self.calls.values() if c["ref"] == ref]})

    def api_requests(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]
