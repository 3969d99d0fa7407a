"""The meeting a call booked, read from the call's data-collection results, and the
Calendar API event it becomes. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugins.google_calendar.settings import GoogleCalendarTeamSettings

# A pragmatic address check: Google refuses an attendee that is not an address, and a
# refused insert would dead-letter the whole booking for the sake of one field.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MARKER_PROPERTY = "renchi_ref"  # extendedProperties.private key holding the marker


class InvalidMeeting(ValueError):
    """The collected values do not make a meeting (the reason names the field only)."""


@dataclass(frozen=True)
class Meeting:
    start: datetime  # aware, in ``time_zone``
    end: datetime
    time_zone: str
    attendee_email: str | None = None
    attendee_name: str | None = None


def _text(values: Mapping[str, Any], field: str) -> str | None:
    value = values.get(field)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _when(text: str, field: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidMeeting(f"{field} is not an ISO 8601 date and time") from None
    if len(text) <= 10:  # a bare date: no meeting starts at an assumed midnight
        raise InvalidMeeting(f"{field} has no time of day")
    if moment.tzinfo is None:  # wall-clock time where the team is
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def has_start(values: Mapping[str, Any], settings: GoogleCalendarTeamSettings) -> bool:
    """Whether the call collected a meeting start at all (most calls do not)."""
    return _text(values, settings.start_field) is not None


def booked_meeting(
    values: Mapping[str, Any], settings: GoogleCalendarTeamSettings, team_zone: str
) -> Meeting | None:
    """The meeting in ``values`` (data-collection id -> value), or ``None`` when the call
    booked none (no start collected).

    :raises InvalidMeeting: a start or end that is not a time, or an end before the start.
    """
    start_text = _text(values, settings.start_field)
    if start_text is None:
        return None
    name = settings.time_zone or team_zone or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # a team zone stored before validation
        name, zone = "UTC", ZoneInfo("UTC")
    start = _when(start_text, settings.start_field, zone)
    end_text = _text(values, settings.end_field)
    if end_text is None:
        end = start + timedelta(minutes=settings.default_duration_minutes)
    else:
        end = _when(end_text, settings.end_field, zone)
        if end <= start:
            raise InvalidMeeting(f"{settings.end_field} is not after {settings.start_field}")
    email = _text(values, settings.attendee_email_field)
    if email is not None and not EMAIL.match(email):
        email = None
    return Meeting(
        start=start,
        end=end,
        time_zone=name,
        attendee_email=email,
        attendee_name=_text(values, settings.attendee_name_field),
    )


def event_id_for(marker: str) -> str:
    """The event id the gateway chooses for a booking: Google accepts client-chosen ids of
    base32hex characters (``a-v``, ``0-9``), 5 to 1024 long, unique per calendar. The
    ledger marker is ``rgw`` + hex digits; ``w`` is not base32hex, so the prefix becomes
    ``renchi``: the same id for every attempt and replay of one booking."""
    digits = marker.removeprefix("rgw")
    if not digits or not re.fullmatch(r"[0-9a-f]+", digits):
        raise ValueError("a ledger marker is rgw and hex digits")
    return "renchi" + digits


def _local(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def event_body(
    meeting: Meeting,
    settings: GoogleCalendarTeamSettings,
    *,
    event_id: str,
    marker: str,
    customer_number: str | None,
    summary: str | None,
    conversation_id: str | None,
) -> dict[str, Any]:
    """The events.insert body: times as wall-clock with their offset plus the IANA zone,
    the caller as attendee, and the marker as a private extended property."""
    caller = meeting.attendee_name or meeting.attendee_email or customer_number or "a caller"
    lines = [f"Booked by the voice agent on a call with {customer_number or 'a caller'}."]
    if meeting.attendee_email:
        lines.append(f"Attendee: {meeting.attendee_email}")
    if settings.include_summary and summary:
        lines += ["", f"Call summary: {summary}"]
    lines += ["", f"Gateway ref: {marker}"]
    body: dict[str, Any] = {
        "id": event_id,
        "summary": settings.event_title.replace("{caller}", caller)[:1024],
        "description": "\n".join(lines)[:8000],
        "start": {"dateTime": _local(meeting.start), "timeZone": meeting.time_zone},
        "end": {"dateTime": _local(meeting.end), "timeZone": meeting.time_zone},
        "extendedProperties": {"private": {MARKER_PROPERTY: marker}},
    }
    if conversation_id:
        body["extendedProperties"]["private"]["renchi_conversation"] = conversation_id[:200]
    if meeting.attendee_email:
        body["attendees"] = [{"email": meeting.attendee_email}]
        if meeting.attendee_name:
            body["attendees"][0]["displayName"] = meeting.attendee_name
    return body


def utc(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as freeBusy's timeMin/timeMax take it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def overlapping(meeting: Meeting, busy: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The busy periods (freeBusy ``calendars.<id>.busy``) the meeting overlaps."""
    hits = []
    for period in busy:
        try:
            start, end = parse_time(str(period["start"])), parse_time(str(period["end"]))
        except (KeyError, ValueError):
            continue
        if start < meeting.end and end > meeting.start:
            hits.append({"start": str(period["start"]), "end": str(period["end"])})
    return hits
