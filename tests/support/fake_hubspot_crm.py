"""HubSpot's CRM API on the loopback fake (mixed into :class:`FakeHubSpot`): contacts
search and create, calls create and search, as HubSpot documents them (docs/plugins/
hubspot.md lists the sources), with its error bodies.

- Bearer tokens from the OAuth side; anything else is 401 with HubSpot's body
  (``{"status": "error", "category": "INVALID_AUTHENTICATION", ...}``).
- Search: ``filterGroups`` OR'ed, filters AND'ed, operators ``EQ`` and
  ``CONTAINS_TOKEN``; ``hs_searchable_calculated_phone_number`` / ``..._mobile_number``
  computed from ``phone`` / ``mobilephone`` as the national digits.
- Validation: a call needs ``hs_timestamp``; associations must use type 194 and name an
  existing contact; otherwise 400 ``VALIDATION_ERROR``.
- Controls: ``rate_limit = (N, seconds)`` answers 429 (HubSpot's body, ``Retry-After``)
  beyond N requests per window; ``fail_next_api(status, body, headers)`` answers the next
  API request; ``fail_after_create`` stores the next call and answers 502;
  ``hold_after_create`` (an ``asyncio.Event``) stores calls and waits for it before
  answering (``created`` is set at each creation).
- ``api_requests``: every API request (method, path, JSON body, bearer, monotonic time).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from typing import Any

from aiohttp import web

from gateway.sync.phone import national_digits, to_e164


def _error(status: int, category: str, message: str, **extra: Any) -> web.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return web.json_response(body, status=status)


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in re.split(r"[^A-Za-z0-9]+", text) if t}


class HubSpotCrmApi:
    """Mixin: the object stores and the routes. Needs ``self.access`` (live tokens)."""

    access: dict[str, Any]

    def init_crm(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.engagements: dict[str, dict[str, Any]] = {}
        self.associations: list[tuple[str, str, int]] = []  # (call id, contact id, type)
        self.api_requests: list[dict[str, Any]] = []
        self.rate_limit: tuple[int, float] | None = None
        self.throttled = 0
        self.canned_api: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.fail_after_create = False
        self.search_delay = 0.0  # seconds a contact search takes (a slow portal)
        self.hold_after_create: asyncio.Event | None = None
        self.created = asyncio.Event()
        self._object_ids = itertools.count(51_000)

    def add_crm_routes(self, app: web.Application) -> None:
        app.router.add_post("/crm/v3/objects/contacts/search", self.search_contacts)
        app.router.add_post("/crm/v3/objects/contacts", self.create_contact)
        app.router.add_post("/crm/v3/objects/calls", self.create_call)
        app.router.add_post("/crm/v3/objects/calls/search", self.search_calls)

    # --- test controls ------------------------------------------------------------------

    def add_contact(self, **properties: Any) -> str:
        cid = str(next(self._object_ids))
        self.contacts[cid] = {"id": cid, "properties": {"hs_object_id": cid, **properties}}
        return cid

    def fail_next_api(
        self, status: int, body: dict[str, Any] | None = None, headers: Any = None
    ) -> None:
        body = body or {"status": "error", "message": "Internal error", "category": "ERROR"}
        self.canned_api.append((status, body, dict(headers or {})))

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.api_requests if r["path"] == path]

    def max_in_window(self, seconds: float) -> int:
        """The most API requests seen in any window of ``seconds`` (sliding)."""
        times = sorted(r["at"] for r in self.api_requests)
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] <= t - seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- the gate every API request passes ----------------------------------------------

    async def _gate(self, request: web.Request) -> tuple[web.Response | None, Any]:
        body = await request.json() if request.can_read_body else None
        header = request.headers.get("Authorization", "")
        now = time.monotonic()
        self.api_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "json": body,
                "at": now,
                "bearer": header[7:] if header.startswith("Bearer ") else None,
            }
        )
        if not header.startswith("Bearer ") or header[7:] not in self.access:
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            ), body
        if self.canned_api:
            status, canned, headers = self.canned_api.pop(0)
            return web.json_response(canned, status=status, headers=headers), body
        if self.rate_limit is not None:
            limit, window = self.rate_limit
            recent = [r for r in self.api_requests[:-1] if r["at"] > now - window]
            if len(recent) >= limit:
                self.throttled += 1
                return web.json_response(
                    {
                        "status": "error",
                        "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT",
                        "correlationId": str(uuid.uuid4()),
                        "policyName": "TEN_SECONDLY_ROLLING",
                    },
                    status=429,
                    headers={"Retry-After": "1"},
                ), body
        return None, body

    # --- search ------------------------------------------------------------------------

    @staticmethod
    def _value(obj: dict[str, Any], name: str) -> str:
        props = obj["properties"]
        if name.startswith("hs_searchable_calculated_"):
            source = "mobilephone" if "mobile" in name else "phone"
            e164 = to_e164(props.get(source))
            return national_digits(e164) if e164 else ""
        return str(props.get(name) or "")

    def _matches(self, obj: dict[str, Any], flt: dict[str, Any]) -> bool:
        value, wanted, op = (
            self._value(obj, flt["propertyName"]),
            str(flt["value"]),
            flt["operator"],
        )
        if op == "EQ":
            return value.lower() == wanted.lower()
        if op == "CONTAINS_TOKEN":
            return wanted.lower() in _tokens(value)
        raise ValueError(op)

    def _search(self, objects: dict[str, dict[str, Any]], body: dict[str, Any]) -> web.Response:
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or sum(len(g.get("filters") or []) for g in groups) > 25:
            return _error(400, "VALIDATION_ERROR", "Too many filter groups or filters")
        try:
            hits = [
                o
                for o in objects.values()
                if not groups or any(all(self._matches(o, f) for f in g["filters"]) for g in groups)
            ]
        except (KeyError, ValueError):
            return _error(400, "VALIDATION_ERROR", "Invalid filter")
        wanted = body.get("properties")
        results = [
            {
                "id": o["id"],
                "properties": {
                    k: v for k, v in o["properties"].items() if wanted is None or k in wanted
                },
            }
            for o in hits[: int(body.get("limit", 10))]
        ]
        return web.json_response({"total": len(hits), "results": results})

    async def search_contacts(self, request: web.Request) -> web.Response:
        if self.search_delay:
            await asyncio.sleep(self.search_delay)
        refused, body = await self._gate(request)
        return refused or self._search(self.contacts, body or {})

    async def search_calls(self, request: web.Request) -> web.Response:
        refused, body = await self._gate(request)
        return refused or self._search(self.engagements, body or {})

    # --- create ------------------------------------------------------------------------

    async def create_contact(self, request: web.Request) -> web.Response:
        refused, body = await self._gate(request)
        if refused:
            return refused
        cid = self.add_contact(**(body or {}).get("properties", {}))
        return web.json_response(self.contacts[cid], status=201)

    async def create_call(self, request: web.Request) -> web.Response:
        refused, body = await self._gate(request)
        if refused:
            return refused
        props = (body or {}).get("properties") or {}
        if "hs_timestamp" not in props:
            return _error(
                400,
                "VALIDATION_ERROR",
                'Property values were not valid: [{"isValid":false,"message":"hs_timestamp '
                'is required","error":"REQUIRED_FIELD","name":"hs_timestamp"}]',
            )
        links = []
        for assoc in (body or {}).get("associations") or []:
            types = [t.get("associationTypeId") for t in assoc.get("types") or []]
            target = str((assoc.get("to") or {}).get("id"))
            if types != [194] or target not in self.contacts:
                return _error(400, "VALIDATION_ERROR", "One or more associations are invalid")
            links.append((target, 194))
        call_id = str(next(self._object_ids))
        self.engagements[call_id] = {
            "id": call_id,
            "properties": {"hs_object_id": call_id, **props},
        }
        self.associations.extend((call_id, target, kind) for target, kind in links)
        self.created.set()
        if self.hold_after_create is not None:
            await self.hold_after_create.wait()  # the test kills the worker meanwhile
        if self.fail_after_create:
            self.fail_after_create = False
            return _error(502, "ERROR", "Bad gateway")
        return web.json_response(self.engagements[call_id], status=201)
