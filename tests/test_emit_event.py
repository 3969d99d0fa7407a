"""Events emitted by code (a task, a handler, a reconciliation): stored like a received
webhook's, deduplicated, one job per interested handler, the worker woken."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise.transactions import in_transaction

from gateway.calls.events import VoiceCallAudioStored
from gateway.events import emit_event, emit_events, wake_workers
from gateway.jobs.models import Job
from gateway.jobs.worker import WAKE_KEY, run_pending_jobs
from gateway.webhooks.models import ROUTED, UNROUTED, WebhookEvent
from tests.support.identity import make_team
from tests.support.webhook_plugin import TestPlugin


async def hooked_app(make_app: Any, db: str) -> tuple[Any, TestPlugin]:
    plugin = TestPlugin()
    return await make_app(db=db, extra_plugins=[("testhooks", plugin)]), plugin


async def test_twice_is_one_event_with_one_job_per_handler(make_app, db_kind):
    app, plugin = await hooked_app(make_app, db_kind)
    team = await make_team("Acme")
    payload = {"id": "weekly-2026-01", "report": {"calls": 12}}
    first = await emit_event(
        app,
        source="cron.weekly_report",
        type="thing.flaky",  # both test handlers want it
        dedup_key="2026-W01",
        payload=payload,
        team_id=team.id,
    )
    again = await emit_event(
        app,
        source="cron.weekly_report",
        type="thing.flaky",
        dedup_key="2026-W01",
        payload=payload,
        team_id=team.id,
    )
    assert (first.new, first.jobs) == (True, 2)
    assert (again.new, again.jobs, again.event_id) == (False, 0, first.event_id)
    [event] = await WebhookEvent.all()
    assert (event.source, event.type, event.status, event.team_id) == (
        "cron.weekly_report",
        "thing.flaky",
        ROUTED,
        team.id,
    )
    assert event.payload == payload
    jobs = await Job.filter(event_id=event.id).order_by("handler")
    assert [(j.handler, j.team_id) for j in jobs] == [
        ("test.flaky", team.id),
        ("test.record", team.id),
    ]
    await run_pending_jobs(app)
    assert sorted(plugin.ran) == [("flaky", "weekly-2026-01"), ("record", "weekly-2026-01")]


async def test_emit_wakes_the_worker_only_after_its_own_commit(make_app):
    app, _plugin = await hooked_app(make_app, "sqlite")
    wake = app.extensions[WAKE_KEY]
    wake.clear()
    await emit_event(app, source="code", type="nobody.listens", dedup_key="1", payload={})
    assert not wake.is_set()  # no jobs, nothing to wake for
    await emit_event(app, source="code", type="thing.one", dedup_key="2", payload={"id": "2"})
    assert wake.is_set()

    wake.clear()
    async with in_transaction() as conn:
        emitted = await emit_event(
            app, source="code", type="thing.one", dedup_key="3", payload={"id": "3"}, using_db=conn
        )
        assert emitted.jobs == 1 and not wake.is_set()  # not committed yet
    wake_workers(app)
    assert wake.is_set()


async def test_joining_a_transaction_that_rolls_back_stores_nothing(make_app, db_kind):
    app, _plugin = await hooked_app(make_app, db_kind)
    with pytest.raises(RuntimeError):
        async with in_transaction() as conn:
            await emit_event(
                app, source="code", type="thing.one", dedup_key="x", payload={}, using_db=conn
            )
            raise RuntimeError("the caller's own work failed")
    assert await WebhookEvent.all().count() == 0
    assert await Job.all().count() == 0


async def test_typed_payloads_name_their_type_and_key(make_app):
    app, _plugin = await hooked_app(make_app, "sqlite")
    audio = VoiceCallAudioStored(
        conversation_id="conv_1", storage_key="3/conv_1.mp3", size_bytes=1024, team_id=None
    )
    emitted = await emit_event(app.extensions["gateway"], source="agent", payload=audio)
    event = await WebhookEvent.get(id=emitted.event_id)
    assert (event.type, event.dedup_key, event.status) == (
        "voice.call.audio_stored",
        "voice.call.audio_stored:conv_1",
        UNROUTED,
    )
    assert VoiceCallAudioStored.model_validate(event.payload) == audio
    with pytest.raises(ValueError, match="type and a dedup_key"):
        await emit_event(app, source="agent", payload={"no": "type"})


async def test_a_batch_naming_one_key_twice_stores_it_once(make_app, db_kind):
    """emit_events dedups within its own batch as a webhook batch does: the second
    payload of a key is a duplicate, not a second set of jobs."""
    app, _plugin = await hooked_app(make_app, db_kind)
    audio = VoiceCallAudioStored(
        conversation_id="conv_2", storage_key="3/conv_2.mp3", size_bytes=1024, team_id=None
    )
    other = audio.model_copy(update={"conversation_id": "conv_3"})
    emitted = await emit_events(
        app, source="agent", payloads=[audio, audio, other], team_ids=[None, None, None]
    )
    assert [e.new for e in emitted] == [True, False, True]
    assert await WebhookEvent.filter(source="agent").count() == 2
    assert emitted[0].event_id != emitted[2].event_id
