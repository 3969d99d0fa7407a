"""A loopback Google (real HTTP on 127.0.0.1): its OAuth dialect and the Calendar API v3
calls the gateway makes, as Google documents them (sources in
docs/plugins/google_calendar.md).

OAuth (:class:`FakeGoogle`): Google's paths, refresh tokens not rotated, revoking an
unknown or dead token is ``400 invalid_token``.

Calendar API (:class:`FakeGoogleCalendar`, under ``/calendar/v3``):

- ``POST /calendars/{calendarId}/events`` (events.insert): ``start`` and ``end`` are
  required (``dateTime`` or ``date``); a client-chosen ``id`` must be base32hex
  (``a-v0-9``), 5-1024 characters, else ``400 invalid``; an id the calendar already has
  is ``409 duplicate``; ``sendUpdates`` must be ``all``, ``externalOnly`` or ``none``.
- ``GET /calendars/{calendarId}/events/{eventId}``: the event, or ``404 notFound``.
- ``POST /freeBusy`` (freeBusy.query): busy periods from the stored events and from
  :meth:`add_busy`, per requested calendar id; an unknown calendar gets
  ``errors: [{"domain": "global", "reason": "notFound"}]``.
- ``primary`` is the connected account's e-mail address.
- Error bodies: ``{"error": {"errors": [{"domain", "reason", "message"}], "code",
  "message"}}``; a bearer that is not a live access token is ``401 authError``.
- Controls: ``fail_next_api(status, body, headers)`` answers the next API request;
  ``throttle_next(status=429|403, retry_after=...)`` Google's rate-limit answers;
  ``fail_after_create`` stores the next event and answers 502 (the answer is lost);
  ``hold_after_create`` (an ``asyncio.Event``) stores events and waits for it before
  answering (``created`` is set at each creation).
- ``api_requests``: every API request (method, path and ``raw_path`` as sent, query,
  JSON body, bearer).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.testing import FakeOAuthServer

API = "/calendar/v3"
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")


def google_error(
    code: int,
    reason: str,
    message: str,
    domain: str = "global",
    headers: dict[str, str] | None = None,
    **location: str,
) -> web.Response:
    error: dict[str, Any] = {"domain": domain, "reason": reason, "message": message, **location}
    body = {"error": {"errors": [error], "code": code, "message": message}}
    return web.json_response(body, status=code, headers=headers)


def _instant(when: dict[str, Any] | None) -> datetime | None:
    if not isinstance(when, dict):
        return None
    text = when.get("dateTime") or when.get("date")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class FakeGoogle(FakeOAuthServer):
    """Google's OAuth endpoints and behaviour: refresh tokens are not rotated, an
    unknown or already revoked token is ``400 invalid_token`` at /revoke."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault(
            "account",
            {
                "sub": "1098",
                "email": "rep@acme.example",
                "email_verified": True,
                "hd": "acme.example",
            },
        )
        super().__init__(paths={"authorize": "/o/oauth2/v2/auth", "userinfo": "/v1/userinfo"}, **kw)

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        if token not in self.grants and token not in self.access:
            return web.json_response(
                {"error": "invalid_token", "error_description": "Token expired or revoked"},
                status=400,
            )
        return await super().revoke(request)


class FakeGoogleCalendar(FakeGoogle):
    """:class:`FakeGoogle` plus the Calendar API (see the module docstring)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calendars: dict[str, dict[str, dict[str, Any]]] = {}  # id -> event id -> event
        self.busy: dict[str, list[dict[str, str]]] = {}
        self.api_requests: list[dict[str, Any]] = []
        self.canned_api: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.fail_after_create = False
        self.hold_after_create: asyncio.Event | None = None
        self.created = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{API}/calendars/{{calendar}}/events", self.insert_event)
        app.router.add_get(f"{API}/calendars/{{calendar}}/events/{{event}}", self.get_event)
        app.router.add_post(f"{API}/freeBusy", self.free_busy)

    @property
    def api_url(self) -> str:
        return self.url + API

    # --- test controls ------------------------------------------------------------------

    def events(self, calendar: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (of one calendar)."""
        found = []
        for cid, events in self.calendars.items():
            if calendar is None or cid == calendar:
                found.extend(events.values())
        return found

    def add_calendar(self, calendar_id: str) -> None:
        self.calendars.setdefault(calendar_id, {})

    def add_busy(self, calendar_id: str, start: str, end: str) -> None:
        self.add_calendar(calendar_id)
        self.busy.setdefault(calendar_id, []).append({"start": start, "end": end})

    def fail_next_api(
        self, status: int, body: dict[str, Any] | None = None, headers: Any = None
    ) -> None:
        body = body or {
            "error": {
                "errors": [
                    {"domain": "global", "reason": "backendError", "message": "Backend Error"}
                ],
                "code": status,
                "message": "Backend Error",
            }
        }
        self.canned_api.append((status, body, dict(headers or {})))

    def throttle_next(self, status: int = 429, retry_after: str | None = None) -> None:
        """Google's rate-limit answer: 429, or 403 ``rateLimitExceeded``."""
        reason = "rateLimitExceeded"
        message = "Rate Limit Exceeded"
        body = {
            "error": {
                "errors": [{"domain": "usageLimits", "reason": reason, "message": message}],
                "code": status,
                "message": message,
            }
        }
        self.fail_next_api(status, body, {"Retry-After": retry_after} if retry_after else None)

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.api_requests if r["method"] == method and r["path"] == path]

    # --- the gate every API request passes ----------------------------------------------

    async def _gate(self, request: web.Request) -> tuple[web.Response | None, Any]:
        body = await request.json() if request.can_read_body else None
        header = request.headers.get("Authorization", "")
        self.api_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path.split("?", 1)[0],  # as sent, percent-encoded
                "query": dict(request.query),
                "json": body,
                "bearer": header[7:] if header.startswith("Bearer ") else None,
            }
        )
        if not header.startswith("Bearer ") or header[7:] not in self.access:
            return google_error(
                401,
                "authError",
                "Invalid Credentials",
                locationType="header",
                location="Authorization",
            ), body
        if self.canned_api:
            status, canned, headers = self.canned_api.pop(0)
            return web.json_response(canned, status=status, headers=headers), body
        return None, body

    def _calendar(self, request: web.Request) -> str:
        calendar = request.match_info["calendar"]
        if calendar == "primary":
            grant = self.bearer_grant(request)
            return str(grant.account["email"]) if grant is not None else calendar
        return calendar

    # --- events.insert / events.get -------------------------------------------------------

    async def insert_event(self, request: web.Request) -> web.Response:
        answer, body = await self._gate(request)
        if answer is not None:
            return answer
        calendar = self._calendar(request)
        if request.query.get("sendUpdates", "none") not in ("all", "externalOnly", "none"):
            return google_error(400, "invalid", "Invalid value for: sendUpdates")
        if not isinstance(body, dict):
            return google_error(400, "parseError", "Parse Error")
        for side in ("start", "end"):
            if _instant(body.get(side)) is None:
                return google_error(400, "required", f"Missing {side} time.")
        if _instant(body["end"]) < _instant(body["start"]):  # type: ignore[operator]
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.")
        event_id = body.get("id") or secrets.token_hex(13)
        if not EVENT_ID.match(str(event_id)):
            return google_error(400, "invalid", "Invalid resource id value.")
        events = self.calendars.setdefault(calendar, {})
        if event_id in events:
            return google_error(409, "duplicate", "The requested identifier already exists.")
        event = {
            **body,
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "organizer": {"email": calendar, "self": True},
        }
        events[event_id] = event
        self.created.set()
        if self.hold_after_create is not None:  # stored; the answer waits (a crash test)
            await self.hold_after_create.wait()
        if self.fail_after_create:
            self.fail_after_create = False
            return google_error(502, "backendError", "Backend Error")
        return web.json_response(event)

    async def get_event(self, request: web.Request) -> web.Response:
        answer, _ = await self._gate(request)
        if answer is not None:
            return answer
        event = self.calendars.get(self._calendar(request), {}).get(request.match_info["event"])
        if event is None:
            return google_error(404, "notFound", "Not Found")
        return web.json_response(event)

    # --- freeBusy.query ----------------------------------------------------------------

    async def free_busy(self, request: web.Request) -> web.Response:
        answer, body = await self._gate(request)
        if answer is not None:
            return answer
        body = body or {}
        low, high = (
            _instant({"dateTime": body.get("timeMin")}),
            _instant({"dateTime": body.get("timeMax")}),
        )
        if low is None or high is None:
            return google_error(400, "required", "Missing timeMin or timeMax.")
        if high <= low:
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.")
        grant = self.bearer_grant(request)
        calendars: dict[str, Any] = {}
        for item in body.get("items") or []:
            asked = str(item.get("id"))
            cid = str(grant.account["email"]) if asked == "primary" and grant else asked
            own = grant is not None and cid == grant.account["email"]  # always exists
            if cid not in self.calendars and not own:
                calendars[asked] = {"errors": [{"domain": "global", "reason": "notFound"}]}
                continue
            periods = list(self.busy.get(cid, []))
            for event in self.calendars.get(cid, {}).values():
                if (
                    event.get("status") != "cancelled"
                    and event.get("transparency") != "transparent"
                ):
                    periods.append(
                        {"start": event["start"]["dateTime"], "end": event["end"]["dateTime"]}
                    )
            busy = [
                p
                for p in periods
                if _instant({"dateTime": p["start"]}) < high  # type: ignore[operator]
                and _instant({"dateTime": p["end"]}) > low  # type: ignore[operator]
            ]
            calendars[asked] = {"busy": busy}
        return web.json_response(
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            }
        )


def plugin_settings(server: FakeGoogleCalendar, **extra: Any) -> dict[str, Any]:
    """``[plugins.google_calendar]`` pointed at the loopback server."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "authorize_url": server.endpoint("authorize"),
        "token_url": server.endpoint("token"),
        "revocation_url": server.endpoint("revoke"),
        "userinfo_url": server.endpoint("userinfo"),
        "api_base_url": server.api_url,
        **extra,
    }
