"""Microsoft Teams cards against the loopback Graph (tests/support/fake_microsoft.py): the
exact requests the gateway sends for a booked meeting, a failed call and the weekly
report; one message across duplicates, retries, replays and a lost answer; Graph's 401,
429, 5xx and refusals; not connected, not configured, needs reconnect; the per-tenant
limit; secrets and transcripts kept out of logs."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from gateway.calls.events import VoiceCallInitiationFailed
from gateway.events import emit_event
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.oauth.models import OAuthConnection
from gateway.sync.models import Effect
from gateway.testing.calls import AGENT_NUMBER, CALLER, SECRET_WORDS, T0
from tests.support.fake_microsoft import (
    TEAM_GROUP_ID,
    FakeMicrosoft,
    plugin_settings,
)
from tests.support.teams_cards import (
    CHANNEL,
    HANDLER,
    NAME,
    PATH,
    READ_SCOPES,
    call,
    high_logs,
    meeting_card,
    sent_card,
    setup_team,
    teams_app,
    weekly,
)
from tests.support.worker_processes import finished_by_a_new_worker, killed_once_stored


@pytest.fixture
async def ms():
    async with FakeMicrosoft() as srv:
        yield srv


# --- Graph -------------------------------------------------------------------------------


async def test_a_booked_meeting_is_one_card_across_duplicate_retry_and_replay(
    make_app, ms, clock, db_kind, caplog
):
    caplog.set_level(logging.DEBUG)
    app = await teams_app(make_app, ms, db=db_kind)
    admin = await setup_team(app, **CHANNEL)
    meeting = {"meeting_start": "2026-01-06T15:00:00+01:00"}
    emitted = await call(app, admin.team.id, collected=meeting)
    again = await call(app, admin.team.id, collected=meeting)  # the same delivery again
    assert emitted.new and not again.new and again.jobs == 0
    await run_pending_jobs(app)

    (post,) = ms.posts("POST")
    row = await Effect.get(plugin=NAME)
    assert post["path"] == PATH
    assert post["json"] == {
        "body": {"contentType": "html", "content": f'<attachment id="{row.marker}"></attachment>'},
        "attachments": [
            {
                "id": row.marker,
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": json.dumps(meeting_card(), separators=(",", ":")),
            }
        ],
    }
    (message,) = ms.messages()
    assert (row.action, row.status, row.provider_id) == (
        "post_meeting_booked",
        "done",
        message["id"],
    )
    assert row.subject.startswith("analysis:")
    assert row.url == message["webUrl"]
    assert (await Job.get(handler=HANDLER)).status == "succeeded"

    await run_pending_jobs(app)  # nothing left to retry
    client = app.test_client()
    replay = await client.post(f"/api/events/{emitted.event_id}/replay", headers=admin.headers)
    assert replay.status_code == 202
    await run_pending_jobs(app)
    assert len(ms.messages()) == 1 and len(ms.posts("POST")) == 1
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 2

    text = high_logs(caplog)
    assert f"posted a card as message {message['id']}" in text
    tokens = {r["bearer"] for r in ms.graph_requests} | set(ms.live_refresh_tokens())
    assert not [t for t in tokens if t and t in text]
    assert SECRET_WORDS not in text and "demo" not in text
    assert SECRET_WORDS not in json.dumps(ms.graph_requests)  # no transcript on the card


async def test_failed_calls_and_calls_that_could_not_start_are_cards(make_app, ms):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    await call(app, admin.team.id, "conv_ok")  # an ordinary call: no card, no ledger row
    await call(
        app,
        admin.team.id,
        "conv_bad",
        outcome="failure",
        summary="Hung up at once. [Call me](https://x.example)",
    )
    await emit_event(
        app,
        source="voice_agent",
        payload=VoiceCallInitiationFailed(
            analysis_id=991,
            conversation_id="conv_busy",
            team_id=admin.team.id,
            failure_reason="busy",
            direction="outbound",
            from_number=AGENT_NUMBER,
            to_number=CALLER,
            failed_at=T0,
        ),
        team_id=admin.team.id,
    )
    await run_pending_jobs(app)
    failed, not_started = (sent_card(p) for p in ms.posts("POST"))
    assert failed["body"][0]["text"] == "Call failed"
    assert failed["body"][1]["text"] == "The voice agent judged the call unsuccessful."
    assert failed["body"][2]["facts"][0] == {"title": "Caller", "value": CALLER}
    assert failed["body"][3] == {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": "Hung up at once. [Call me](https://x.example)"}],
    }
    assert not_started["body"][1]["text"] == "The voice agent could not start the call."
    assert not_started["body"][2]["facts"] == [
        {"title": "Number", "value": CALLER},
        {"title": "Direction", "value": "outbound"},
        {"title": "Reason", "value": "busy"},
        {"title": "Failed at", "value": "2026-01-01 12:00 UTC"},
    ]
    rows = await Effect.filter(plugin=NAME).order_by("id")
    assert [(r.subject, r.action, r.status) for r in rows] == [
        (rows[0].subject, "post_call_failed", "done"),
        ("analysis:991", "post_call_failed", "done"),
    ]
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 3


async def test_the_weekly_report_is_one_card_per_team_and_week(make_app, ms):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    await weekly(app, admin.team.id)
    await weekly(app, admin.team.id, key="w1-again")  # emitted twice for the same week
    await run_pending_jobs(app)
    (post,) = ms.posts("POST")
    assert sent_card(post)["body"] == [
        {
            "type": "TextBlock",
            "text": "Weekly report: Acme Sales",
            "size": "Medium",
            "weight": "Bolder",
            "color": "Default",
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": "2026-01-05 to 2026-01-11 (Europe/Berlin)",
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Calls", "value": "42 (previous week 30)"},
                {"title": "Answered", "value": "35"},
                {"title": "Success rate", "value": "62%"},
                {"title": "Meetings booked", "value": "6"},
                {"title": "Talk time", "value": "3 h 25 min"},
                {"title": "Top outcomes", "value": "success 20, failure 12"},
            ],
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Mon 2026-01-05", "value": "10"},
                {"title": "Tue 2026-01-06", "value": "32"},
            ],
        },
    ]
    (row,) = await Effect.filter(plugin=NAME)
    assert row.subject == f"weekly_report:{admin.team.id}:2026-01-05"
    assert row.status == "done" and len(ms.messages()) == 1


async def test_not_configured_not_connected_and_turned_off_complete_with_a_reason(make_app, ms):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app)  # connected, no channel chosen
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    row = await Effect.get(plugin=NAME)
    assert (row.status, row.detail) == ("skipped", "not configured")

    await OAuthConnection.filter(team_id=admin.team.id).delete()
    await app.test_client().patch(
        f"/api/teams/{admin.team.id}/settings/{NAME}", headers=admin.headers, json=CHANNEL
    )
    await weekly(app, admin.team.id, key="w2")  # a second emission: same week, same row
    await run_pending_jobs(app)
    row = await Effect.get(id=row.id)
    assert (row.status, row.detail) == ("skipped", "not connected")

    await app.test_client().patch(
        f"/api/teams/{admin.team.id}/settings/{NAME}",
        headers=admin.headers,
        json={"weekly_report": False},
    )
    await weekly(app, admin.team.id, key="w3")
    await run_pending_jobs(app)
    row = await Effect.get(id=row.id)
    assert row.status == "skipped" and "turn weekly_report cards off" in row.detail
    assert ms.graph_requests == []
    assert await Job.filter(handler=HANDLER, status="succeeded").count() == 3


async def test_needs_reconnect_is_dead_with_a_reason(make_app, ms, clock):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    ms.revoke_all_refresh_tokens()
    clock.advance(4599)  # the token is due: the refresh is refused (invalid_grant)
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead"
    assert "Microsoft Teams needs to be connected again by a team admin" in job.last_error
    row = await Effect.get(plugin=NAME)
    assert row.status == "failed" and job.last_error.endswith(row.detail)
    assert row.detail.endswith("(refresh refused: invalid_grant)")

    await weekly(app, admin.team.id, key="again")  # now known: dead without asking Microsoft
    refreshes = ms.refresh_calls
    await run_pending_jobs(app)
    assert ms.refresh_calls == refreshes and ms.graph_requests == []
    assert (
        "connected again" in (await Job.filter(handler=HANDLER).order_by("-id").first()).last_error
    )


async def test_a_401_refreshes_once_and_posts(make_app, ms):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    ms.expire_access_tokens()  # Graph no longer takes the token it issued
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    first, second = ms.posts("POST")
    assert ms.refresh_calls == 1 and first["bearer"] != second["bearer"]
    assert first["json"] == second["json"] and len(ms.messages()) == 1


async def test_a_429_reschedules_after_retry_after(make_app, ms, clock):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    ms.fail_next_graph(429, headers={"Retry-After": "7"})
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert (job.status, job.attempts) == ("pending", 0)
    assert round((job.run_at - clock.now()).total_seconds()) == 7
    assert not (await Effect.get(plugin=NAME)).sent  # a 429 created nothing
    clock.advance(7)
    await run_pending_jobs(app)
    assert len(ms.messages()) == 1 and (await Job.get(id=job.id)).status == "succeeded"
    assert ms.posts("GET") == []  # so nothing to look for


async def test_a_5xx_retries_and_the_retry_checks_for_the_card_first(make_app, ms, clock):
    app = await teams_app(make_app, ms, scopes=READ_SCOPES)
    admin = await setup_team(app, **CHANNEL)
    ms.fail_next_graph(503)
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "pending" and job.attempts == 1
    assert "microsoft_teams answered HTTP 503" in job.last_error
    clock.advance(3600)
    await run_pending_jobs(app)
    (listing,) = ms.posts("GET")
    assert listing["path"] == PATH and listing["query"] == {"$top": "50"}
    assert len(ms.messages()) == 1 and len(ms.posts("POST")) == 2


async def test_a_lost_answer_is_found_by_its_marker_on_a_later_page(make_app, ms, clock):
    app = await teams_app(make_app, ms, scopes=READ_SCOPES)
    admin = await setup_team(app, **CHANNEL)
    ms.fail_after_post = True  # Graph stored the message, the answer is lost (504)
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    (posted,) = ms.messages()
    ms.add_chatter(60)  # a busy channel: ours is now on the second page
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(ms.posts("POST")) == 1 and len(ms.messages()) == 61
    _, second = ms.posts("GET")
    assert second["query"] == {"$top": "50", "$skiptoken": "50"}
    row = await Effect.get(plugin=NAME)
    assert (row.status, row.provider_id, row.url) == ("done", posted["id"], posted["webUrl"])


async def test_a_worker_killed_after_graph_posted_ends_with_one_message(make_app, ms, clock):
    app = await teams_app(make_app, ms, scopes=READ_SCOPES)
    admin = await setup_team(app, **CHANNEL)
    await weekly(app, admin.team.id)
    ms.hold_after_post = asyncio.Event()  # stored, the answer held back
    worker = asyncio.create_task(run_pending_jobs(app))
    await asyncio.wait_for(ms.posted.wait(), 10)
    worker.cancel()  # the worker dies before it hears the answer
    with pytest.raises(asyncio.CancelledError):
        await worker
    ms.hold_after_post.set()
    ms.hold_after_post = None
    row = await Effect.get(plugin=NAME)
    assert row.sent and row.status == "pending"
    clock.advance(3600)  # the job's lease ran out: another worker takes it
    await run_pending_jobs(app)
    assert len(ms.messages()) == 1 and len(ms.posts("POST")) == 1
    row = await Effect.get(plugin=NAME)
    assert row.status == "done" and row.provider_id == ms.messages()[0]["id"]


async def test_without_read_permission_a_lost_answer_is_posted_again(make_app, ms, clock):
    app = await teams_app(make_app, ms)  # default scopes: no ChannelMessage.Read.All
    admin = await setup_team(app, **CHANNEL)
    ms.fail_after_post = True
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    clock.advance(3600)
    await run_pending_jobs(app)
    assert len(ms.posts("GET")) == 1
    assert len(ms.messages()) == 2  # at least once: documented
    row = await Effect.get(plugin=NAME)
    assert row.status == "done" and row.data == {"unverified": True}


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (400, "BadRequest", "HTTP 400 BadRequest: Invalid request body."),
        (403, "Forbidden", "HTTP 403 Forbidden: Forbidden"),
    ],
)
async def test_graph_refusals_are_dead_with_graphs_reason(make_app, ms, status, code, reason):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, **CHANNEL)
    ms.fail_next_graph(status, code)
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead"
    assert job.last_error.endswith(f"Microsoft Graph refused POST the channel message: {reason}")
    assert (await Effect.get(plugin=NAME)).status == "failed"


async def test_an_unknown_channel_is_graphs_404(make_app, ms):
    app = await teams_app(make_app, ms)
    admin = await setup_team(app, team_id=TEAM_GROUP_ID, channel_id="19:nope@thread.tacv2")
    await weekly(app, admin.team.id)
    await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead" and "HTTP 404 NotFound" in job.last_error


async def test_posts_are_limited_per_tenant(make_app, ms, clock):
    app = await teams_app(make_app, ms, rate_limit_requests=1, rate_limit_seconds=60)
    admin = await setup_team(app, **CHANNEL)
    await weekly(app, admin.team.id)
    await call(app, admin.team.id, outcome="failure")
    await run_pending_jobs(app)
    assert len(ms.posts("POST")) == 1
    waiting = await Job.get(handler=HANDLER, status="pending")
    assert waiting.attempts == 0 and waiting.run_at > clock.now()


async def test_a_worker_sigkilled_after_graph_stored_the_card_ends_with_one_message(make_app, ms):
    settings = plugin_settings(ms, scopes=READ_SCOPES, reconcile_lag_seconds=0)
    app = await make_app(plugins={NAME: settings})
    admin = await setup_team(app, **CHANNEL)
    await weekly(app, admin.team.id)
    hold = ms.hold_after_post = asyncio.Event()  # stored, the answer held back

    def release() -> None:
        hold.set()
        ms.hold_after_post = None

    await killed_once_stored(app, {NAME: settings}, ms.posted, release)
    row = await Effect.get(plugin=NAME)
    assert (row.status, row.sent) == ("pending", True)

    await finished_by_a_new_worker(app, {NAME: settings}, HANDLER)
    assert len(ms.messages()) == 1 and len(ms.posts("POST")) == 1 and len(ms.posts("GET")) == 1
    row = await Effect.get(id=row.id)
    assert (row.status, row.provider_id) == ("done", ms.messages()[0]["id"])
