"""Microsoft Teams cards through a Workflows webhook (for tenants that forbid posting
through Graph), against the loopback Workflows trigger (tests/support/fake_microsoft.py):
the card sent once, 429/5xx/a lost answer, refused and unlisted URLs, redirects not
followed, caller-collected values kept plain; the URL never in a log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.sync.models import Effect
from tests.support.fake_microsoft import (
    FakeMicrosoft,
    FakeWorkflows,
)
from tests.support.teams_cards import (
    HANDLER,
    NAME,
    call,
    high_logs,
    meeting_card,
    setup_team,
    teams_app,
    weekly,
)


@pytest.fixture
async def ms():
    async with FakeMicrosoft() as srv:
        yield srv


# --- Workflows webhook ---------------------------------------------------------------------


async def test_a_workflows_webhook_gets_the_card_once(make_app, ms, caplog):
    caplog.set_level(logging.DEBUG)
    app = await teams_app(make_app, ms)
    async with FakeWorkflows() as flow:
        admin = await setup_team(app, connect=False, webhook_url=flow.url)
        got = await app.test_client().get(
            f"/api/teams/{admin.team.id}/settings/{NAME}", headers=admin.headers
        )
        assert flow.sig not in await got.get_data(as_text=True)  # a secret setting
        meeting = {"meeting_start": "2026-01-06T15:00:00+01:00"}
        emitted = await call(app, admin.team.id, collected=meeting)
        await run_pending_jobs(app)
        assert flow.posts == [
            {
                "type": "message",
                "attachments": [
                    {
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": None,
                        "content": meeting_card(),
                    }
                ],
            }
        ]
        replay = await app.test_client().post(
            f"/api/events/{emitted.event_id}/replay", headers=admin.headers
        )
        assert replay.status_code == 202
        await run_pending_jobs(app)
        assert len(flow.cards) == 1
    row = await Effect.get(plugin=NAME)
    assert row.status == "done" and row.provider_id.startswith("08584")
    assert ms.graph_requests == []  # Graph is not used, nor a connection needed
    assert flow.sig not in high_logs(caplog) and flow.workflow_id not in high_logs(caplog)


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """Every text Teams renders as markdown: TextBlock text, Fact.Title and Fact.Value
    (https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format)."""
    out: list[str] = []
    for element in card["body"]:
        if element["type"] == "TextBlock":
            out.append(element["text"])
        if element["type"] == "FactSet":
            out += [t for fact in element["facts"] for t in (fact["title"], fact["value"])]
    return out


async def test_a_collected_meeting_value_cannot_put_a_link_on_the_card(make_app, ms):
    # The meeting value is what the agent collected from the caller: like the summary it
    # goes in a TextRun (no markdown), never where Teams renders a [link](url).
    app = await teams_app(make_app, ms)
    phish = "[Confirm your booking](https://phish.example/login)"
    async with FakeWorkflows() as flow:
        admin = await setup_team(app, connect=False, webhook_url=flow.url)
        await call(app, admin.team.id, collected={"meeting_start": phish})
        await run_pending_jobs(app)
    (card,) = flow.cards
    assert not [t for t in markdown_texts(card) if "phish.example" in t]
    assert phish in json.dumps(card)


async def test_workflows_429_5xx_and_a_lost_answer(make_app, ms, clock):
    app = await teams_app(make_app, ms)
    async with FakeWorkflows() as flow:
        admin = await setup_team(app, connect=False, webhook_url=flow.url)
        flow.fail_next(429, {"Retry-After": "30"})
        await weekly(app, admin.team.id)
        await run_pending_jobs(app)
        job = await Job.get(handler=HANDLER)
        assert (job.status, job.attempts) == ("pending", 0)
        assert round((job.run_at - clock.now()).total_seconds()) == 30
        clock.advance(30)
        flow.fail_next(502)
        await run_pending_jobs(app)
        job = await Job.get(id=job.id)
        assert job.status == "pending" and job.attempts == 1
        assert job.last_error.endswith("the Teams Workflows webhook answered HTTP 502")
        clock.advance(3600)
        flow.fail_after_accept = True  # the flow took it, the answer is lost
        await run_pending_jobs(app)
        clock.advance(3600)
        await run_pending_jobs(app)
        # No read-back: at least once, so the lost answer means a second card.
        assert len(flow.cards) == 2 and len(flow.posts) == 4
        assert (await Job.get(id=job.id)).status == "succeeded"


async def test_a_refused_or_unlisted_webhook_is_dead_without_the_url(make_app, ms):
    app = await teams_app(make_app, ms)
    async with FakeWorkflows() as flow:
        admin = await setup_team(app, connect=False, webhook_url=flow.url.replace("sIg", "bad"))
        await weekly(app, admin.team.id)
        await run_pending_jobs(app)
        job = await Job.get(handler=HANDLER)
        assert job.status == "dead"
        assert job.last_error.endswith(
            "the Teams Workflows webhook refused the card: HTTP 401 DirectApiAuthorizationRequired"
        )


async def test_a_webhook_off_the_allowed_hosts_is_never_called(make_app, ms):
    app = await teams_app(make_app, ms, webhook_hosts=["*.logic.azure.com"])
    async with FakeWorkflows() as flow:
        admin = await setup_team(app, connect=False, webhook_url=flow.url)
        await weekly(app, admin.team.id)
        await run_pending_jobs(app)
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead" and flow.posts == []
    assert "not on an allowed host" in job.last_error and "127.0.0.1" not in job.last_error


async def test_a_webhook_that_redirects_elsewhere_is_not_followed(make_app, ms):
    # A Logic App's Response action can answer 307 with any Location: following it would
    # POST the card to a host off the allowed list (e.g. the operator's own network).
    from aiohttp import web

    from gateway.testing import serve

    inside: list[Any] = []

    async def internal(request: web.Request) -> web.Response:
        inside.append(await request.read())
        return web.Response(status=202)

    async def flow(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": f"http://localhost:{port}/admin"})

    target, redirector = web.Application(), web.Application()
    target.router.add_post("/admin", internal)
    redirector.router.add_post("/invoke", flow)
    target_runner, port = await serve(target)
    flow_runner, flow_port = await serve(redirector)
    try:
        app = await teams_app(make_app, ms)
        admin = await setup_team(
            app, connect=False, webhook_url=f"http://127.0.0.1:{flow_port}/invoke?sig=s"
        )
        await weekly(app, admin.team.id)
        await run_pending_jobs(app)
    finally:
        await flow_runner.cleanup()
        await target_runner.cleanup()
    assert inside == []
    job = await Job.get(handler=HANDLER)
    assert job.status == "dead" and "HTTP 307" in job.last_error
    assert "localhost" not in job.last_error
