"""Books the meeting an analyzed call agreed on in the team's Google Calendar, once.

Handler ``google_calendar.book_meeting`` on ``voice.call.analyzed``:

1. the meeting is read from the call's data-collection results (field names from the
   team's settings); a call that booked nothing does nothing;
2. no Google connection: the ledger says ``skipped: not connected`` and the job
   completes; ``needs_reconnect``: ``failed`` and the job is dead with the reason;
3. the ledger row ``(analysis:<id>, google_calendar, create_event)`` is claimed;
   ``done``: nothing to create (a retry, a duplicate, a replay);
4. when the team asks for it, a free/busy query first: a busy slot is a conflict, kept
   on the ledger (``failed``, with the busy periods) and emitted as
   ``calendar.meeting.conflict``; nothing is booked;
5. ``events.insert`` with an event id the gateway chooses (derived from the ledger
   marker): an insert after a lost answer gets Google's ``409 duplicate``, and the event
   is then read by that id instead of being created twice;
6. the event id and link are committed, and ``calendar.event.created`` is emitted.

Google's throttling (429, and 403 ``rateLimitExceeded``/``userRateLimitExceeded``)
defers the job by ``Retry-After``; 5xx and timeouts retry with backoff; a 401 refreshes
the token once (:class:`gateway.sync.ProviderSession`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway.calls import VoiceCallAnalyzed
from gateway.events import JobContext, PermanentFailure, emit_event
from gateway.identity import Team
from gateway.oauth import NotConnected, OAuthConnection, ReconnectRequired
from gateway.sync import ProviderError, ProviderSession, RateLimit, ledger
from gateway.team_settings import get_team_settings
from plugins.google_calendar.events import (
    BusyPeriod,
    CalendarEventCreated,
    CalendarMeetingConflict,
)
from plugins.google_calendar.meeting import (
    MARKER_PROPERTY,
    InvalidMeeting,
    Meeting,
    booked_meeting,
    event_body,
    event_id_for,
    has_start,
    overlapping,
    utc,
)
from plugins.google_calendar.settings import (
    NAME,
    GoogleCalendarSettings,
    GoogleCalendarTeamSettings,
)

log = logging.getLogger("plugins.google_calendar")

ACTION = "create_event"
NOT_CONNECTED = "not connected"
RECONNECT = "Google Calendar needs to be connected again by a team admin"
THROTTLED_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


def google_error(body: Any) -> tuple[str | None, str | None]:
    """``(reason, message)`` of Google's error body
    ``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}``."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None
    errors = error.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
    reason = first.get("reason") or error.get("status")
    message = error.get("message") or first.get("message")
    return (str(reason) if reason else None), (str(message)[:200] if message else None)


def throttled(status: int, body: Any) -> bool:
    """Google says "too many requests" with a 429, or a 403 naming a rate limit."""
    return status == 429 or (status == 403 and google_error(body)[0] in THROTTLED_REASONS)


def refused(exc: ProviderError, what: str) -> PermanentFailure:
    reason, message = google_error(exc.body)
    detail = "".join((f" {reason}" if reason else "", f": {message}" if message else ""))
    return PermanentFailure(f"Google Calendar refused {what}: HTTP {exc.status}{detail}")


def session_for(
    app: Any, settings: GoogleCalendarSettings, team_id: int, connection: OAuthConnection
) -> ProviderSession:
    """The team's Calendar API session, its rate limit counted per Google account (two
    teams connecting one account share it)."""
    return ProviderSession(
        app,
        team_id,
        NAME,
        base_url=settings.api_base_url,
        limits=(RateLimit(settings.requests_per_minute, 60),),
        limit_key=f"{NAME}:{connection.account_id or f'team{team_id}'}",
        throttled=throttled,
    )


def events_path(calendar_id: str) -> str:
    # A calendar id is an address, or carries '#' (imported calendars): one path segment.
    return f"/calendars/{quote(calendar_id, safe='@')}/events"


@dataclass
class Booking:
    ctx: JobContext
    team_id: int
    call: VoiceCallAnalyzed
    team: GoogleCalendarTeamSettings
    meeting: Meeting
    effect: ledger.EffectHandle

    @property
    def customer_number(self) -> str | None:
        outbound = self.call.direction == "outbound"
        return self.call.to_number if outbound else self.call.from_number

    def facts(self, calendar_id: str) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "analysis_id": self.call.analysis_id,
            "conversation_id": self.call.conversation_id,
            "call_id": self.call.call_id,
            "provider": NAME,
            "calendar_id": calendar_id,
            "start": self.meeting.start,
            "end": self.meeting.end,
            "time_zone": self.meeting.time_zone,
            "attendee_email": self.meeting.attendee_email,
            "attendee_name": self.meeting.attendee_name,
            "customer_number": self.customer_number,
            "marker": self.effect.marker,
        }

    async def announce_created(self, calendar_id: str) -> None:
        """``calendar.event.created``, deduplicated on the marker: emitted again after a
        crash between the ledger's commit and the emit, never twice."""
        payload = CalendarEventCreated(
            **self.facts(calendar_id),
            event_id=self.effect.provider_id or "",
            html_link=self.effect.url,
        )
        await emit_event(self.ctx.app, source=NAME, payload=payload, team_id=self.team_id)

    async def announce_conflict(self, calendar_id: str, busy: list[dict[str, str]]) -> None:
        payload = CalendarMeetingConflict(
            **self.facts(calendar_id), busy=[BusyPeriod(**p) for p in busy]
        )
        await emit_event(self.ctx.app, source=NAME, payload=payload, team_id=self.team_id)


async def _busy(api: ProviderSession, calendar_id: str, meeting: Meeting) -> list[dict[str, str]]:
    """The busy periods of the calendar that the meeting overlaps (freeBusy.query)."""
    query = {
        "timeMin": utc(meeting.start),
        "timeMax": utc(meeting.end),
        "timeZone": meeting.time_zone,
        "items": [{"id": calendar_id}],
    }
    try:
        answer = (await api.request("POST", "/freeBusy", json=query)).body
    except ProviderError as exc:
        raise refused(exc, "the free/busy query") from None
    calendars = (answer or {}).get("calendars") or {}
    entry = calendars.get(calendar_id)
    if entry is None and len(calendars) == 1:
        entry = next(iter(calendars.values()))
    if not isinstance(entry, Mapping):
        raise PermanentFailure("Google Calendar's free/busy answer has no entry for the calendar")
    if entry.get("errors"):
        first = entry["errors"][0] if isinstance(entry["errors"][0], Mapping) else {}
        raise PermanentFailure(
            f"Google Calendar could not tell whether the calendar is free: "
            f"{first.get('reason') or 'error'}"
        )
    return overlapping(meeting, list(entry.get("busy") or []))


async def _existing(api: ProviderSession, path: str, event_id: str, marker: str) -> Any:
    """The event an earlier attempt created (its insert answered 409 duplicate)."""
    try:
        found = (await api.request("GET", f"{path}/{event_id}")).body
    except ProviderError as exc:
        raise refused(exc, "reading the event back") from None
    private = ((found or {}).get("extendedProperties") or {}).get("private") or {}
    if private.get(MARKER_PROPERTY) != marker:
        raise PermanentFailure(
            f"Google Calendar event {event_id} exists but was not created by this booking"
        )
    return found


async def _create(booking: Booking, api: ProviderSession) -> None:
    effect, team, meeting = booking.effect, booking.team, booking.meeting
    # The calendar an earlier attempt wrote to, even if the setting changed since.
    calendar_id = str(effect.data.get("calendar_id") or team.calendar_id)
    # An attempt that sent the insert already passed the check; asking again would find
    # the slot busy with our own event.
    if team.check_free_busy and not effect.sent:
        busy = await _busy(api, calendar_id, meeting)
        if busy:
            periods = ", ".join(f"{p['start']} to {p['end']}" for p in busy)
            await effect.fail(f"conflict: the calendar is busy ({periods}); nothing was booked")
            await booking.announce_conflict(calendar_id, busy)
            log.info("%s: analysis %s conflicts with a busy slot", NAME, booking.call.analysis_id)
            return
    if effect.data.get("calendar_id") != calendar_id:
        await effect.remember(calendar_id=calendar_id)
    event_id = event_id_for(effect.marker)
    body = event_body(
        meeting,
        team,
        event_id=event_id,
        marker=effect.marker,
        customer_number=booking.customer_number,
        summary=booking.call.summary,
        conversation_id=booking.call.conversation_id,
    )
    path = events_path(calendar_id)
    await api.ready()  # a full limiter reschedules before anything is marked sent
    try:
        answer = await effect.send(
            api,
            lambda: api.request("POST", path, json=body, params={"sendUpdates": team.send_updates}),
        )
        made = answer.body
    except ProviderError as exc:
        if exc.status != 409 or google_error(exc.body)[0] != "duplicate":
            raise refused(exc, "the event") from None
        made = await _existing(api, path, event_id, effect.marker)
        log.info("%s: event of analysis %s found by its id", NAME, booking.call.analysis_id)
    await effect.created(str(made.get("id") or event_id), made.get("htmlLink"))
    log.info(
        "%s: booked analysis %s as event %s", NAME, booking.call.analysis_id, effect.provider_id
    )
    await booking.announce_created(calendar_id)


async def book_meeting(ctx: JobContext, settings: GoogleCalendarSettings) -> None:
    """The ``google_calendar.book_meeting`` handler (see the module docstring)."""
    call = VoiceCallAnalyzed.model_validate(ctx.event.payload)
    team_id = call.team_id or ctx.event.team_id
    if team_id is None or call.analysis_id is None:
        return  # an unrouted call belongs to no team, so to no calendar
    team = await get_team_settings(team_id, NAME, GoogleCalendarTeamSettings, app=ctx.app)
    values = {key: item.value for key, item in call.data_collection.items()}
    if not has_start(values, team):
        return  # the call booked no meeting: no need to read the team's time zone
    row = await Team.get_or_none(id=team_id)
    invalid: str | None = None
    try:
        meeting = booked_meeting(values, team, row.time_zone if row is not None else "UTC")
    except InvalidMeeting as exc:
        meeting, invalid = None, str(exc)
    if meeting is None and invalid is None:
        return  # the call booked no meeting
    connection = await OAuthConnection.get_or_none(team_id=team_id, provider=NAME)
    api = None
    if connection is not None and connection.status != "needs_reconnect":
        api = session_for(ctx.app, settings, team_id, connection)
        await api.ready()  # a full limiter defers before any ledger write
    subject = ledger.analysis_subject(call.analysis_id)
    async with ledger.effect(
        ctx.app, subject=subject, plugin=NAME, action=ACTION, team_id=team_id
    ) as effect:
        if effect.done:
            if meeting is not None:
                booking = Booking(ctx, team_id, call, team, meeting, effect)
                await booking.announce_created(str(effect.data.get("calendar_id") or ""))
            return
        if meeting is None:
            await effect.skip(f"no meeting booked: {invalid}")
            return
        if not team.book_meetings:
            await effect.skip("the team's settings do not book meetings")
            return
        if connection is None:
            await effect.skip(NOT_CONNECTED)
            return
        if api is None:
            why = f" ({connection.last_error})" if connection.last_error else ""
            await effect.fail(RECONNECT + why)
            raise PermanentFailure(RECONNECT + why)
        try:
            await _create(Booking(ctx, team_id, call, team, meeting, effect), api)
        except NotConnected:
            await effect.skip(NOT_CONNECTED)  # disconnected while the job ran
        except ReconnectRequired:
            await effect.fail(RECONNECT)
            raise PermanentFailure(RECONNECT) from None
        except PermanentFailure as exc:
            await effect.fail(str(exc))
            raise
