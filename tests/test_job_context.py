"""What a handler's JobContext gives, in the two cases the types made visible: an event
without a team (no token can exist for it), and jobs run by ``run_pending_jobs`` on an
app that is not serving (no shared HTTP session yet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway import hookimpl
from gateway.app import get_gateway
from gateway.events import EventHandler, JobContext, emit_event
from gateway.jobs.models import DEAD, SUCCEEDED, Job
from gateway.jobs.worker import run_pending_jobs
from gateway.testing import serve
from tests.support.identity import make_team


class ContextPlugin:
    """Handlers that use the context the way plugins do."""

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.fetched: list[str] = []

    async def needs_token(self, ctx: JobContext) -> None:
        await ctx.access_token("acme_crm")

    async def fetches(self, ctx: JobContext) -> None:
        async with ctx.http.get(self.url) as resp:
            self.fetched.append(await resp.text())

    @hookimpl
    def register_event_handlers(self, config: Any) -> list[EventHandler]:
        return [
            EventHandler("ctx.needs_token", ("ctx.token",), self.needs_token, max_attempts=5),
            EventHandler("ctx.fetches", ("ctx.fetch",), self.fetches),
        ]


async def test_a_token_for_an_event_without_a_team_dead_letters_at_once(make_app):
    app = await make_app(extra_plugins=[("ctxplugin", ContextPlugin())])
    await emit_event(app, source="test", type="ctx.token", dedup_key="1", payload={})
    await run_pending_jobs(app)
    [job] = await Job.all()
    # Retrying cannot give the event a team: dead at the first attempt, saying why.
    assert (job.status, job.attempts) == (DEAD, 1)
    assert "has no team" in (job.last_error or "")


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/page", page)
    runner, port = await serve(app)
    yield f"http://127.0.0.1:{port}/page"
    await runner.cleanup()


async def test_run_pending_jobs_on_an_app_that_is_not_serving_gives_handlers_http(
    make_app, page_url
):
    await make_app()  # migrates the database
    team = await make_team("Acme")
    plugin = ContextPlugin(page_url)
    app = await make_app(extra_plugins=[("ctxplugin", plugin)], start=False)
    gw = get_gateway(app)
    await gw.db.open()
    try:
        assert gw.http is None
        await emit_event(
            app, source="test", type="ctx.fetch", dedup_key="1", payload={}, team_id=team.id
        )
        assert await run_pending_jobs(app) == 1
        assert gw.http is None  # the run's own session is closed again
    finally:
        await gw.db.close()
    [job] = await Job.all()
    assert job.status == SUCCEEDED, job.last_error
    assert plugin.fetched == ["hello"]
