"""Meetings booked on a call land in Google Calendar, once: against the loopback Google
(tests/support/fake_google_calendar.py), with assertions on the exact requests the
gateway sent (events.insert, events.get, freeBusy.query), the free/busy conflict, and
Google's 401, 429, 403 rateLimitExceeded, 409 duplicate, 5xx and validation errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.events import payload_table
from gateway.identity.models import Team
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.sync.models import Effect
from gateway.testing import (
    analyzed_call,
    connected_admin,
    integration_status,
    seed_admin,
)
from gateway.webhooks.models import WebhookEvent
from plugins.google_calendar.events import BusyPeriod, CalendarEventCreated, CalendarMeetingConflict
from plugins.google_calendar.meeting import InvalidMeeting, booked_meeting, event_id_for
from plugins.google_calendar.settings import GoogleCalendarTeamSettings
from tests.support.fake_google_calendar import FakeGoogleCalendar, plugin_settings
from tests.support.sync_helpers import CALLER, SECRET_WORDS

NAME = "google_calendar"
HANDLER = "google_calendar.book_meeting"
EVENTS = "/calendar/v3/calendars/primary/events"
FREEBUSY = "/calendar/v3/freeBusy"
ADA = "ada@engines.example"
BOOKED = {
    "meeting_start": "2026-01-06T15:00:00",
    "meeting_end": "2026-01-06T15:30:00",
    "attendee_email": ADA,
    "attendee_name": "Ada Lovelace",
}


@pytest.fixture
async def google():
    async with FakeGoogleCalendar() as server:
        yield server


async def gcal_app(make_app: Any, server: FakeGoogleCalendar, db: str = "sqlite", **extra: Any):
    return await make_app(db=db, plugins={NAME: plugin_settings(server, **extra)})


async def connected(app: Any, team_zone: str = "America/New_York", **team_settings: Any) -> Any:
    admin = await connected_admin(app, NAME, settings=team_settings)
    await Team.filter(id=admin.team.id).update(time_zone=team_zone)
    return admin


async def booked_call(
    app: Any,
    team_id: int,
    collected: dict[str, Any] | None = None,
    conversation_id: str = "conv_1",
    source: str = "voice_agent",
) -> Any:
    """An analyzed call whose data collection holds ``collected`` (a booked meeting by
    default)."""
    return await analyzed_call(
        app,
        team_id,
        conversation_id,
        summary="Wants a demo of the engine",
        collected=BOOKED if collected is None else collected,
        source=source,
    )


async def calendar_events(kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in await WebhookEvent.filter(type=kind).order_by("id")]


@pytest.mark.parametrize("model", [CalendarEventCreated, CalendarMeetingConflict, BusyPeriod])
def test_the_catalogue_shows_each_payload_as_the_model_has_it(model):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    heading = f"#### {model.__name__}" if model is BusyPeriod else f"### `{model.EVENT_TYPE}`"
    assert payload_table(model) in doc.split(heading, 1)[1]


@pytest.mark.parametrize(
    ("collected", "start", "end"),
    [
        ({"meeting_start": "2026-03-02T09:30"}, "2026-03-02T09:30:00+01:00", "10:00:00+01:00"),
        (
            {"meeting_start": "2026-03-02 09:30:00", "meeting_end": "2026-03-02T11:00:00"},
            "2026-03-02T09:30:00+01:00",
            "11:00:00+01:00",
        ),
        ({"meeting_start": "2026-03-02T08:30:00Z"}, "2026-03-02T09:30:00+01:00", "10:00:00+01:00"),
        (
            {"meeting_start": "2026-03-02T03:30:00-05:00", "meeting_end": None},
            "2026-03-02T09:30:00+01:00",
            "10:00:00+01:00",
        ),
    ],
)
def test_collected_times_are_read_in_the_teams_zone(collected, start, end):
    meeting = booked_meeting(collected, GoogleCalendarTeamSettings(), "Europe/Berlin")
    assert meeting is not None and meeting.time_zone == "Europe/Berlin"
    assert meeting.start.isoformat() == start and meeting.end.isoformat().endswith(end)


@pytest.mark.parametrize(
    ("collected", "reason"),
    [
        ({"meeting_start": "tomorrow at 3"}, "meeting_start is not an ISO 8601 date and time"),
        ({"meeting_start": "2026-03-02"}, "meeting_start has no time of day"),
        (
            {"meeting_start": "2026-03-02T10:00", "meeting_end": "2026-03-02T09:00"},
            "meeting_end is not after meeting_start",
        ),
    ],
)
def test_collected_values_that_make_no_meeting_are_refused(collected, reason):
    with pytest.raises(InvalidMeeting, match=reason):
        booked_meeting(collected, GoogleCalendarTeamSettings(), "UTC")


def test_no_start_is_no_meeting_and_a_bad_address_is_left_out():
    settings = GoogleCalendarTeamSettings()
    assert (
        booked_meeting({"meeting_start": "  ", "attendee_email": "a@b.example"}, settings, "UTC")
        is None
    )
    meeting = booked_meeting(
        {"meeting_start": "2026-03-02T10:00", "attendee_email": "call me maybe"}, settings, "UTC"
    )
    assert meeting is not None and meeting.attendee_email is None


def test_event_ids_are_base32hex_and_the_same_for_every_attempt():
    marker = "rgw" + "0123456789abcdef0123456789abc"
    assert event_id_for(marker) == "renchi0123456789abcdef0123456789abc"
    assert all(c in "0123456789abcdefghijklmnopqrstuv" for c in event_id_for(marker))
    with pytest.raises(ValueError):
        event_id_for("not-a-marker")


async def test_a_booked_meeting_becomes_one_event_with_the_caller_as_attendee(
    make_app, google, db_kind, caplog
):
    caplog.set_level(logging.DEBUG)
    app = await gcal_app(make_app, google, db=db_kind)
    admin = await connected(app)
    emitted = await booked_call(app, admin.team.id)
    await run_pending_jobs(app)

    row = await Effect.get(plugin=NAME)
    event_id = event_id_for(row.marker)
    (insert,) = google.api_requests
    assert (insert["method"], insert["path"]) == ("POST", EVENTS)
    assert insert["query"] == {"sendUpdates": "all"}
    assert insert["json"] == {
        "id": event_id,
        "summary": "Meeting with Ada Lovelace",
        "description": f"Booked by the voice agent on a call with {CALLER}.\n"
        f"Attendee: {ADA}\n\nCall summary: Wants a demo of the engine\n\n"
        f"Gateway ref: {row.marker}",
        "start": {"dateTime": "2026-01-06T15:00:00-05:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-01-06T15:30:00-05:00", "timeZone": "America/New_York"},
        "extendedProperties": {
            "private": {"renchi_ref": row.marker, "renchi_conversation": "conv_1"}
        },
        "attendees": [{"email": ADA, "displayName": "Ada Lovelace"}],
    }
    (event,) = google.events("rep@acme.example")
    assert event["id"] == event_id
    assert (row.status, row.action, row.provider_id) == ("done", "create_event", event_id)
    assert row.subject.startswith("analysis:") and row.url == event["htmlLink"]
    assert (await Job.get(handler=HANDLER)).status == "succeeded"

    (created,) = await calendar_events("calendar.event.created")
    assert created == {
        "team_id": admin.team.id,
        "analysis_id": int(row.subject.split(":")[1]),
        "conversation_id": "conv_1",
        "call_id": None,
        "provider": NAME,
        "calendar_id": "primary",
        "start": "2026-01-06T15:00:00-05:00",
        "end": "2026-01-06T15:30:00-05:00",
        "time_zone": "America/New_York",
        "attendee_email": ADA,
        "attendee_name": "Ada Lovelace",
        "customer_number": CALLER,
        "marker": row.marker,
        "event_id": event_id,
        "html_link": event["htmlLink"],
    }
    assert emitted.new
    # No token, no e-mail, no summary and no transcript above DEBUG.
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    assert f"google_calendar: booked analysis {created['analysis_id']} as event" in text
    secrets = {r["bearer"] for r in google.api_requests} | set(google.live_refresh_tokens())
    for secret in [*secrets, ADA, "Wants a demo", SECRET_WORDS]:
        assert secret not in text


async def test_an_offset_is_converted_and_a_missing_end_is_the_default_duration(make_app, google):
    app = await gcal_app(make_app, google)
    # The team's own zone is UTC; its calendar setting says Paris.
    admin = await connected(
        app, team_zone="UTC", default_duration_minutes=45, time_zone="Europe/Paris"
    )
    await booked_call(app, admin.team.id, {"meeting_start": "2026-07-01T08:00:00Z"})
    await run_pending_jobs(app)
    (insert,) = google.requests_to("POST", EVENTS)
    body = insert["json"]
    assert body["start"] == {"dateTime": "2026-07-01T10:00:00+02:00", "timeZone": "Europe/Paris"}
    assert body["end"] == {"dateTime": "2026-07-01T10:45:00+02:00", "timeZone": "Europe/Paris"}
    assert "attendees" not in body  # no e-mail collected: the number is in the description
    assert body["summary"] == f"Meeting with {CALLER}"


async def test_a_call_that_booked_nothing_writes_nothing(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    await booked_call(app, admin.team.id, {"budget": "10k"})
    await run_pending_jobs(app)
    assert google.api_requests == [] and await Effect.all().count() == 0
    assert (await Job.get(handler=HANDLER)).status == "succeeded"


async def test_an_unreadable_start_is_skipped_with_the_field_named(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    await booked_call(app, admin.team.id, {"meeting_start": "next tuesday", "attendee_email": ADA})
    await run_pending_jobs(app)
    assert google.api_requests == []
    row = await Effect.get(plugin=NAME)
    assert row.status == "skipped"
    assert row.detail == "no meeting booked: meeting_start is not an ISO 8601 date and time"


async def test_field_names_and_calendar_come_from_the_team_settings(make_app, google):
    app = await gcal_app(make_app, google)
    google.add_calendar("sales#team@group.calendar.google.com")
    admin = await connected(
        app,
        calendar_id="sales#team@group.calendar.google.com",
        start_field="slot",
        attendee_email_field="email",
        send_updates="none",
        include_summary=False,
        event_title="Demo: {caller}",
    )
    await booked_call(app, admin.team.id, {"slot": "2026-01-06T09:00:00", "email": ADA})
    await run_pending_jobs(app)
    (insert,) = google.api_requests
    assert insert["raw_path"] == (
        "/calendar/v3/calendars/sales%23team@group.calendar.google.com/events"
    )
    assert insert["query"] == {"sendUpdates": "none"}
    assert insert["json"]["summary"] == f"Demo: {ADA}"
    assert "Call summary" not in insert["json"]["description"]
    assert len(google.events("sales#team@group.calendar.google.com")) == 1


async def test_a_duplicate_a_retry_a_replay_and_a_lost_answer_make_one_event(
    make_app, google, clock, db_kind
):
    app = await gcal_app(make_app, google, db=db_kind)
    admin = await connected(app)
    emitted = await booked_call(app, admin.team.id)
    again = await booked_call(app, admin.team.id)  # the same delivery once more
    assert emitted.new and not again.new and again.jobs == 0

    google.fail_after_create = True  # Google stored it; the answer is lost (502)
    await run_pending_jobs(app)
    assert len(google.events()) == 1
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 1)
    row = await Effect.get(plugin=NAME)
    assert row.status == "pending" and row.sent  # the worker "died" before the commit
    clock.advance(3600)
    await run_pending_jobs(app)  # the insert gets 409 duplicate; the event is read back
    event_id = event_id_for(row.marker)
    assert [(r["method"], r["path"]) for r in google.api_requests] == [
        ("POST", EVENTS),
        ("POST", EVENTS),
        ("GET", f"{EVENTS}/{event_id}"),
    ]
    assert google.api_requests[0]["json"] == google.api_requests[1]["json"]
    assert (await Job.get(id=job.id)).status == "succeeded"
    row = await Effect.get(plugin=NAME)
    assert (row.status, row.provider_id) == ("done", event_id)

    # The same call delivered by another source (a reconciliation), and a replay.
    other = await booked_call(app, admin.team.id, source="voice_agent.reconcile")
    assert other.new and other.jobs >= 1
    client = app.test_client()
    replay = await client.post(f"/api/events/{emitted.event_id}/replay", headers=admin.headers)
    assert replay.status_code == 202
    await run_pending_jobs(app)
    assert len(google.events()) == 1 and len(google.api_requests) == 3
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 3
    assert len(await calendar_events("calendar.event.created")) == 1


async def test_a_busy_slot_is_reported_as_a_conflict_and_not_booked(make_app, google, clock):
    app = await gcal_app(make_app, google)
    admin = await connected(app, check_free_busy=True)
    google.add_busy("rep@acme.example", "2026-01-06T20:15:00Z", "2026-01-06T21:00:00Z")
    emitted = await booked_call(app, admin.team.id)
    await run_pending_jobs(app)

    (query,) = google.api_requests
    assert (query["method"], query["path"]) == ("POST", FREEBUSY)
    assert query["json"] == {
        "timeMin": "2026-01-06T20:00:00Z",
        "timeMax": "2026-01-06T20:30:00Z",
        "timeZone": "America/New_York",
        "items": [{"id": "primary"}],
    }
    assert google.events() == []
    row = await Effect.get(plugin=NAME)
    assert row.status == "failed"
    assert row.detail == (
        "conflict: the calendar is busy (2026-01-06T20:15:00Z to 2026-01-06T21:00:00Z); "
        "nothing was booked"
    )
    assert (await Job.get(handler=HANDLER)).status == "succeeded"  # reported, not an error
    (conflict,) = await calendar_events("calendar.meeting.conflict")
    assert conflict["busy"] == [{"start": "2026-01-06T20:15:00Z", "end": "2026-01-06T21:00:00Z"}]
    assert conflict["attendee_email"] == ADA and conflict["calendar_id"] == "primary"

    # The rep frees the slot; a replay books it (after a fresh check).
    google.busy.clear()
    client = app.test_client()
    resp = await client.post(f"/api/events/{emitted.event_id}/replay", headers=admin.headers)
    assert resp.status_code == 202
    await run_pending_jobs(app)
    assert [r["path"] for r in google.api_requests] == [FREEBUSY, FREEBUSY, EVENTS]
    assert len(google.events()) == 1
    assert (await Effect.get(plugin=NAME)).status == "done"


async def test_a_lost_answer_is_not_taken_for_a_conflict_with_our_own_event(
    make_app, google, clock
):
    app = await gcal_app(make_app, google)
    admin = await connected(app, check_free_busy=True)
    await booked_call(app, admin.team.id)
    google.fail_after_create = True
    await run_pending_jobs(app)
    clock.advance(3600)
    await run_pending_jobs(app)
    # The retry does not ask free/busy again: the slot is busy with the event it created.
    assert [(r["method"], r["path"]) for r in google.api_requests] == [
        ("POST", FREEBUSY),
        ("POST", EVENTS),
        ("POST", EVENTS),
        ("GET", f"{EVENTS}/{google.events()[0]['id']}"),
    ]
    assert (await Effect.get(plugin=NAME)).status == "done"
    assert await calendar_events("calendar.meeting.conflict") == []


async def test_a_free_slot_is_booked_after_the_check(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app, check_free_busy=True)
    google.add_busy("rep@acme.example", "2026-01-06T19:00:00Z", "2026-01-06T20:00:00Z")
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert [r["path"] for r in google.api_requests] == [FREEBUSY, EVENTS]
    assert len(google.events()) == 1


async def test_a_calendar_free_busy_cannot_read_is_dead_with_the_reason(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app, check_free_busy=True, calendar_id="gone@group.calendar.google.com")
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead"
    assert job.last_error.endswith(
        "Google Calendar could not tell whether the calendar is free: notFound"
    )
    assert [r["path"] for r in google.api_requests] == [FREEBUSY] and google.events() == []


async def test_not_connected_completes_with_the_reason_recorded(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await seed_admin()
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.last_error) == ("succeeded", None)
    row = await Effect.get(plugin=NAME)
    assert (row.status, row.detail) == ("skipped", "not connected")
    assert google.api_requests == []


async def test_needs_reconnect_is_dead_with_a_reason_the_admin_sees(make_app, google, clock):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    google.revoke_all_refresh_tokens()  # the user removed the app in their Google account
    clock.advance(7200)  # the access token expired: the refresh is refused
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    client = app.test_client()
    jobs = await (
        await client.get(f"/api/jobs?handler={HANDLER}", headers=admin.headers)
    ).get_json()
    (job,) = jobs["items"]
    assert job["status"] == "dead"
    assert "Google Calendar needs to be connected again by a team admin" in job["last_error"]
    assert (await integration_status(client, admin, NAME))["status"] == "needs_reconnect"
    row = await Effect.get(plugin=NAME)
    assert row.status == "failed" and "connected again" in row.detail
    assert google.events() == []

    # A later call finds the connection marked: dead at once, without asking Google.
    refreshes = google.refresh_calls
    await booked_call(app, admin.team.id, conversation_id="conv_2")
    await run_pending_jobs(app)
    assert google.refresh_calls == refreshes
    assert await Job.filter(handler=HANDLER, status="dead").count() == 2


async def test_a_401_refreshes_the_token_once_and_retries_once(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    google.expire_access_tokens()  # Google no longer takes the token it issued
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    assert google.refresh_calls == 1
    first, second = google.api_requests
    assert first["bearer"] != second["bearer"] and first["json"] == second["json"]
    assert len(google.events()) == 1
    assert (await Job.get(handler=HANDLER)).status == "succeeded"


@pytest.mark.parametrize("status", [429, 403])
async def test_google_throttling_reschedules_after_retry_after(make_app, google, clock, status):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    google.throttle_next(status, retry_after="7")
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 0)  # waiting is not failing
    assert round((job.run_at - clock.now()).total_seconds()) == 7
    row = await Effect.get(plugin=NAME)
    assert row.sent  # the throttled insert went out: the retry may meet a 409
    clock.advance(7)
    await run_pending_jobs(app)
    assert len(google.events()) == 1
    assert [r["path"] for r in google.api_requests] == [EVENTS, EVENTS]


async def test_a_403_that_is_not_a_rate_limit_is_dead_with_googles_reason(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    google.fail_next_api(
        403,
        {
            "error": {
                "errors": [
                    {
                        "domain": "calendar",
                        "reason": "requiredAccessLevel",
                        "message": "You need to have writer access to this calendar.",
                    }
                ],
                "code": 403,
                "message": "You need to have writer access to this calendar.",
            }
        },
    )
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead"
    assert job.last_error.endswith(
        "Google Calendar refused the event: HTTP 403 requiredAccessLevel: "
        "You need to have writer access to this calendar."
    )
    assert (await Effect.get(plugin=NAME)).status == "failed"


async def test_a_5xx_retries_with_backoff(make_app, google, clock):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    google.fail_next_api(503)
    await booked_call(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "pending" and job.attempts == 1
    assert "google_calendar answered HTTP 503" in job.last_error
    assert job.run_at > clock.now()
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(google.events()) == 1
    assert (await Job.get(id=job.id)).status == "succeeded"


async def test_requests_per_account_are_limited_by_the_core_limiter(make_app, google, clock):
    app = await gcal_app(make_app, google, requests_per_minute=1)
    admin = await connected(app)
    await booked_call(app, admin.team.id, conversation_id="conv_a")
    await booked_call(app, admin.team.id, conversation_id="conv_b")
    await run_pending_jobs(app)
    assert len(google.api_requests) == 1
    waiting = await Job.get(handler=HANDLER, status="pending")
    assert waiting.attempts == 0 and waiting.run_at > clock.now()


async def test_the_team_settings_are_validated(make_app, google):
    app = await gcal_app(make_app, google)
    admin = await connected(app)
    client = app.test_client()
    url = f"/api/teams/{admin.team.id}/settings/{NAME}"
    resp = await client.patch(url, headers=admin.headers, json={"time_zone": "Mars/Olympus"})
    assert resp.status_code == 400
    assert (await resp.get_json())["field"] == "time_zone"
    resp = await client.patch(url, headers=admin.headers, json={"send_updates": "everyone"})
    assert resp.status_code == 400
    values = (await (await client.get(url, headers=admin.headers)).get_json())["values"]
    assert values["calendar_id"] == "primary" and values["start_field"] == "meeting_start"
    assert values["default_duration_minutes"] == 30 and values["check_free_busy"] is False
