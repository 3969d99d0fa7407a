"""Google Calendar with real worker processes: a worker killed with SIGKILL after Google
created the event and before the ledger heard of it; a new worker finishes the job with
the same event id (409 duplicate, read back): one event."""

from __future__ import annotations

import asyncio

from gateway.jobs.models import Job
from gateway.sync.models import Effect
from plugins.google_calendar.meeting import event_id_for
from tests.plugins.test_google_calendar_events import EVENTS, HANDLER, NAME, booked_call, connected
from tests.support.fake_google_calendar import FakeGoogleCalendar, plugin_settings
from tests.support.worker_processes import finished_by_a_new_worker, killed_once_stored


async def test_a_worker_killed_after_google_answered_still_books_one_event(make_app):
    async with FakeGoogleCalendar() as google:
        settings = plugin_settings(google)
        app = await make_app(plugins={NAME: settings})
        admin = await connected(app)
        await booked_call(app, admin.team.id)
        hold = google.hold_after_create = asyncio.Event()  # created, the answer held back

        def release() -> None:
            hold.set()
            google.hold_after_create = None

        await killed_once_stored(app, {NAME: settings}, google.created, release)
        row = await Effect.get(plugin=NAME)
        assert (row.status, row.sent) == ("pending", True)
        job = await Job.get(handler=HANDLER)
        assert job.status == "running"  # the dead worker's lease, running out

        await finished_by_a_new_worker(app, {NAME: settings}, HANDLER)
        event_id = event_id_for(row.marker)
        assert [e["id"] for e in google.events()] == [event_id]
        assert [(r["method"], r["path"]) for r in google.api_requests] == [
            ("POST", EVENTS),
            ("POST", EVENTS),
            ("GET", f"{EVENTS}/{event_id}"),
        ]
        row = await Effect.get(id=row.id)
        assert (row.status, row.provider_id) == ("done", event_id)
