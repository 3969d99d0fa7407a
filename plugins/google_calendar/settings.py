"""Google Calendar settings: the operator's ``[plugins.google_calendar]`` table and what
each team's admin chooses (``/api/teams/<id>/settings/google_calendar``)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator

from gateway.config import HttpBaseURL, PluginSettings

NAME = "google_calendar"
DEFAULT_SCOPES = ["openid", "email", "https://www.googleapis.com/auth/calendar.events"]


class GoogleCalendarSettings(PluginSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    revocation_url: str = "https://oauth2.googleapis.com/revoke"
    userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    # Ask Google to add the scopes granted before (incremental authorization).
    include_granted_scopes: bool = True
    # The Calendar API v3 (events.insert, events.get, freeBusy.query).
    api_base_url: HttpBaseURL = "https://www.googleapis.com/calendar/v3"
    # Google's per-user quota is counted per minute (600 per user per project by
    # default); the gateway keeps each connected account under this.
    requests_per_minute: int = Field(default=600, ge=1)


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone, e.g. Europe/Paris") from None
    return value


class GoogleCalendarTeamSettings(BaseModel):
    """What a team admin decides: where a meeting the agent booked goes, and how it is
    read from the call's data-collection results."""

    book_meetings: bool = Field(
        True, description="create a calendar event when the agent booked a meeting"
    )
    calendar_id: str = Field(
        "primary",
        min_length=1,
        max_length=255,
        description="the calendar to write to: 'primary' (the connected account's) or a "
        "calendar id such as sales@group.calendar.google.com",
    )
    start_field: str = Field(
        "meeting_start",
        min_length=1,
        max_length=100,
        description="data-collection item holding the meeting's start (ISO 8601)",
    )
    end_field: str = Field(
        "meeting_end",
        min_length=1,
        max_length=100,
        description="data-collection item holding its end (ISO 8601); missing: start + "
        "default_duration_minutes",
    )
    attendee_email_field: str = Field(
        "attendee_email",
        min_length=1,
        max_length=100,
        description="data-collection item holding the caller's e-mail (the attendee)",
    )
    attendee_name_field: str = Field(
        "attendee_name",
        min_length=1,
        max_length=100,
        description="data-collection item holding the caller's name (for the title)",
    )
    default_duration_minutes: int = Field(
        30, ge=5, le=24 * 60, description="length of a meeting whose end was not collected"
    )
    time_zone: str | None = Field(
        None,
        description="IANA time zone of the event and of times collected without an offset; "
        "null: the team's time zone",
    )
    check_free_busy: bool = Field(
        False,
        description="ask the calendar's free/busy first; a busy slot is reported as a "
        "conflict and nothing is booked",
    )
    send_updates: Literal["all", "externalOnly", "none"] = Field(
        "all", description="whom Google e-mails the invitation to (events.insert sendUpdates)"
    )
    event_title: str = Field(
        "Meeting with {caller}",
        min_length=1,
        max_length=200,
        description="{caller} is replaced by the caller's name, else e-mail, else number",
    )
    include_summary: bool = Field(
        True, description="put the agent's call summary in the event's description"
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _zone(value)
