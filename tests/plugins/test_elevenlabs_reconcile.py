"""Reconciliation against a loopback ElevenLabs API: it stores exactly the finished
conversations the webhook never delivered, through the webhook's own path (so neither
can duplicate the other), pages by cursor, waits out 429s on the gateway clock, and runs
from the command line (``register_commands``) and as a scheduled task."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.calls.models import CallAnalysis
from gateway.cli import main
from gateway.identity.models import Team, VoiceAgent
from gateway.jobs.models import Job
from gateway.webhooks.models import WebhookEvent
from plugins.elevenlabs.commands import scheduled, scheduled_tasks
from plugins.elevenlabs.reconcile import NotConfigured, reconcile
from tests.conftest import _run_sync
from tests.support.fake_elevenlabs import AGENT, PATH, SECRET, conversation, delivery
from tests.support.fake_elevenlabs_api import API_KEY, FakeConversationsApi, in_thread

OTHER_AGENT = "agent_other_team_02"


@pytest.fixture
async def api():
    fake = await FakeConversationsApi(max_page_size=3).start()
    yield fake
    await fake.stop()


async def start(make_app, api, db: str = "sqlite", **extra: Any) -> Any:
    settings = {"webhook_secret": SECRET, "api_key": API_KEY, "api_base_url": api.base_url}
    return await make_app(db=db, plugins={"elevenlabs": {**settings, **extra}})


async def seed_agents() -> None:
    for name, agent in (("Acme", AGENT), ("Globex", OTHER_AGENT)):
        team = await Team.create(name=name)
        await VoiceAgent.create(team=team, agent_id=agent)


def unix(clock, minutes_ago: float) -> int:
    return int((clock.now() - timedelta(minutes=minutes_ago)).timestamp())


async def run(app, clock, hours: float = 24):
    gw = app.extensions["gateway"]
    return await reconcile(app, since=clock.now() - timedelta(hours=hours), http=gw.http)


async def deliver(app, clock, data: dict[str, Any]) -> None:
    body, head = delivery("post_call_transcription", data, int(clock.now().timestamp()))
    response = await app.test_client().post(PATH, data=body, headers=head)
    assert response.status_code == 200, await response.get_data(as_text=True)


async def counts() -> dict[str, int]:
    return {
        "analyses": await CallAnalysis.all().count(),
        "deliveries": await WebhookEvent.filter(type="elevenlabs.post_call_transcription").count(),
        "analyzed": await WebhookEvent.filter(type="voice.call.analyzed").count(),
    }


async def test_reconciliation_fills_exactly_the_gaps(make_app, db_kind, clock, api):
    app = await start(make_app, api, db_kind)
    await seed_agents()
    # N = 8 finished conversations over two agents (pages of 3), K = 3 of them delivered.
    finished = [
        conversation(f"conv_{i:02d}", start=unix(clock, 30 + i), agent_id=agent)
        for i, agent in enumerate([AGENT] * 5 + [OTHER_AGENT] * 3)
    ]
    for c in finished:
        api.add(c)
    api.add(conversation("conv_live", start=unix(clock, 2), status="in-progress"))
    api.add(conversation("conv_processing", start=unix(clock, 3), status="processing"))
    api.add(conversation("conv_last_week", start=unix(clock, 7 * 24 * 60)))
    api.add(conversation("conv_unregistered", start=unix(clock, 5), agent_id="agent_nobody"))
    delivered = [finished[0], finished[4], finished[6]]
    for c in delivered:
        await deliver(app, clock, c)

    report = await run(app, clock)
    assert (report.agents, report.listed, report.unfinished) == (2, 10, 2)
    assert (report.already_stored, report.imported, report.gone) == (3, 5, 0)
    assert await counts() == {"analyses": 8, "deliveries": 8, "analyzed": 8}
    missing = {c["conversation_id"] for c in finished} - {c["conversation_id"] for c in delivered}
    assert set(api.details_fetched()) == missing  # only the gaps were fetched
    cursors = [q for path, q in api.requests if path.endswith("conversations") and "cursor" in q]
    assert cursors, "paging by cursor was never exercised"

    # Each imported conversation went through the webhook's own apply and dedup key.
    event = await WebhookEvent.get(dedup_key="conv_01:post_call_transcription")
    assert event.source == "elevenlabs.webhook" and event.payload["reconciled"] is True
    row = await CallAnalysis.get(conversation_id="conv_01")
    assert row.summary and row.outcome == "success" and row.team_id is not None

    # A second run adds nothing; the webhook arriving late is a duplicate.
    again = await run(app, clock)
    assert (again.imported, again.already_stored) == (0, 8)
    await deliver(app, clock, finished[1])
    assert await counts() == {"analyses": 8, "deliveries": 8, "analyzed": 8}


async def test_a_finished_conversation_later_is_imported_then(make_app, clock, api):
    app = await start(make_app, api)
    await seed_agents()
    live = conversation("conv_later", start=unix(clock, 2), status="in-progress")
    api.add(live)
    assert (await run(app, clock)).imported == 0
    live["status"] = "done"
    assert (await run(app, clock)).imported == 1


async def test_rate_limits_are_waited_out_on_the_gateway_clock(make_app, clock, api):
    app = await start(make_app, api)
    await seed_agents()
    api.add(conversation("conv_throttled", start=unix(clock, 10)))
    api.throttle(2, retry_after="7")
    before = clock.now()
    report = await run(app, clock)
    assert report.imported == 1 and report.waited_seconds == 14
    assert clock.now() - before == timedelta(seconds=14)


async def test_a_deleted_conversation_is_counted_and_the_rest_imported(make_app, clock, api):
    app = await start(make_app, api)
    await seed_agents()
    api.add(conversation("conv_kept", start=unix(clock, 10)))
    api.add(conversation("conv_deleted", start=unix(clock, 11)))
    api.deleted.add("conv_deleted")  # between the listing and the fetch
    report = await run(app, clock)
    assert (report.imported, report.gone) == (1, 1)


async def test_without_an_api_key_nothing_is_asked(make_app, clock, api):
    app = await make_app(plugins={"elevenlabs": {"webhook_secret": SECRET}})
    with pytest.raises(NotConfigured):
        await run(app, clock)
    assert api.requests == []


async def test_the_scheduled_task_reconciles_its_lookback(make_app, clock, api):
    app = await start(make_app, api, reconcile_lookback_hours=1)
    await seed_agents()
    api.add(conversation("conv_recent", start=unix(clock, 30)))
    api.add(conversation("conv_old", start=unix(clock, 90)))
    gw = app.extensions["gateway"]
    ctx = SimpleNamespace(app=app, config=gw.config, clock=clock, http=gw.http)
    figures = await scheduled(ctx)
    assert figures["imported"] == 1 and figures["listed"] == 1
    # Registered through register_scheduled_tasks once the scheduling subsystem exists.
    try:
        import gateway.scheduling  # noqa: F401
    except ModuleNotFoundError:
        assert scheduled_tasks(gw.config) is None
    else:  # pragma: no cover - depends on the build
        [task] = scheduled_tasks(gw.config)
        assert task.name == "elevenlabs-reconcile" and task.handler is scheduled


# -- the command line ------------------------------------------------------------------------


def write_config(tmp_path: Path, api: FakeConversationsApi | None, **extra: str) -> Path:
    lines = [
        "[gateway]",
        f'data_dir = "{tmp_path / "data"}"',
        f'database_url = "sqlite://{tmp_path / "gw.db"}"',
        "auto_migrate = true",
        "[plugins.elevenlabs]",
        f'webhook_secret = "{SECRET}"',
    ]
    if api is not None:
        lines += [f'api_key = "{API_KEY}"', f'api_base_url = "{api.base_url}"']
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    path = tmp_path / "plugins.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def seed_cli(config: Path) -> None:
    async def go() -> None:
        from gateway.app import create_app
        from gateway.config import load_config

        test_app = create_app(load_config(config)).test_app()
        await test_app.startup()
        try:
            await seed_agents()
        finally:
            await test_app.shutdown()

    _run_sync(go())


def stored_analyses(config: Path) -> list[str]:
    async def go() -> list[str]:
        from gateway.app import create_app
        from gateway.config import load_config

        test_app = create_app(load_config(config)).test_app()
        await test_app.startup()
        try:
            jobs = await Job.all().count()
            assert jobs == 0  # nobody subscribed here
            return sorted(await CallAnalysis.all().values_list("conversation_id", flat=True))
        finally:
            await test_app.shutdown()

    return _run_sync(go())


def test_hook_register_commands_runs_gateway_elevenlabs_reconcile(tmp_path, capsys):
    now = int(time.time())
    fake = FakeConversationsApi()
    fake.add(conversation("conv_cli_recent", start=now - 3600))
    fake.add(conversation("conv_cli_older", start=now - 5 * 3600))
    with in_thread(fake):
        config = write_config(tmp_path, fake)
        seed_cli(config)
        assert main(["elevenlabs", "reconcile", "--hours", "2", "--config", str(config)]) == 0
        figures = json.loads(capsys.readouterr().out)
        assert figures["imported"] == 1 and figures["agents"] == 2
        assert stored_analyses(config) == ["conv_cli_recent"]
        since = datetime.fromtimestamp(now - 6 * 3600, UTC).isoformat()
        assert main(["--config", str(config), "elevenlabs", "reconcile", "--since", since]) == 0
        figures = json.loads(capsys.readouterr().out)
        assert (figures["imported"], figures["already_stored"]) == (1, 1)
    assert stored_analyses(config) == ["conv_cli_older", "conv_cli_recent"]


def test_the_command_says_what_is_missing_in_one_line(tmp_path, capsys):
    config = write_config(tmp_path, None)
    assert main(["--config", str(config), "elevenlabs", "reconcile"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gateway: elevenlabs reconcile: [plugins.elevenlabs] api_key is not configured"
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "elevenlabs", "reconcile", "--since", "soon"])
    assert exited.value.code == 2
    assert "not an ISO 8601 date-time" in capsys.readouterr().err


def test_a_refused_api_key_is_one_line_and_status_1(tmp_path, capsys):
    fake = FakeConversationsApi()
    with in_thread(fake):
        config = write_config(tmp_path, fake)
        config.write_text(config.read_text().replace(API_KEY, "xi-wrong"))
        seed_cli(config)
        assert main(["--config", str(config), "elevenlabs", "reconcile"]) == 1
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("gateway: ")]
    assert said == ["gateway: elevenlabs reconcile: GET /v1/convai/conversations: HTTP 401"]
    assert "xi-wrong" not in err


def test_the_command_is_listed_by_help_and_only_when_the_plugin_is_enabled(tmp_path, capsys):
    config = write_config(tmp_path, None)
    with pytest.raises(SystemExit):
        main(["--config", str(config), "--help"])
    assert "elevenlabs" in capsys.readouterr().out
    config.write_text(config.read_text() + "enabled = false\n")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "elevenlabs", "reconcile"])
    assert exited.value.code == 2
    assert "invalid choice: 'elevenlabs'" in capsys.readouterr().err
