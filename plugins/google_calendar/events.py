"""What the calendar booking tells other plugins (docs/events.md): a meeting landed in a
calendar, or could not because the slot was busy. Calendar-neutral types, so a Teams
card or a report reads them whatever calendar a team uses."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from gateway.events import EventPayload

CREATED = "calendar.event.created"
CONFLICT = "calendar.meeting.conflict"


class BusyPeriod(BaseModel):
    start: str = Field(description="RFC 3339, as the calendar reported it")
    end: str = Field(description="RFC 3339, as the calendar reported it")


class _Meeting(EventPayload):
    team_id: int = Field(description="the team")
    analysis_id: int = Field(description="the CallAnalysis row of the call that booked it")
    conversation_id: str | None = Field(None, description="the agent provider's id")
    call_id: int | None = Field(None, description="the Call row, when known")
    provider: str = Field(description="the calendar plugin, e.g. google_calendar")
    calendar_id: str = Field(description="the calendar, as the team's settings name it")
    start: datetime = Field(description="the meeting's start, with the zone's offset")
    end: datetime = Field(description="the meeting's end, with the zone's offset")
    time_zone: str = Field(description="IANA time zone of the event")
    attendee_email: str | None = Field(None, description="the caller's e-mail, if collected")
    attendee_name: str | None = Field(None, description="the caller's name, if collected")
    customer_number: str | None = Field(None, description="E.164 of the caller")
    marker: str = Field(description="the booking's idempotency marker (the ledger's)")

    def dedup_key(self) -> str:
        return f"{self.EVENT_TYPE}:{self.marker}"


class CalendarEventCreated(_Meeting):
    EVENT_TYPE: ClassVar[str] = CREATED

    event_id: str = Field(description="the calendar's id of the event")
    html_link: str | None = Field(None, description="the event in the calendar's web UI")


class CalendarMeetingConflict(_Meeting):
    EVENT_TYPE: ClassVar[str] = CONFLICT

    busy: list[BusyPeriod] = Field(
        default_factory=list, description="the busy periods the meeting overlaps"
    )


CATALOGUE: dict[str, type[EventPayload]] = {
    CREATED: CalendarEventCreated,
    CONFLICT: CalendarMeetingConflict,
}
