"""``gateway jobs``: queue depth, dead jobs and retry, as an operator runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.cli import main
from gateway.config import load_config
from tests.conftest import _run_sync


def seed(config_path: Path) -> int:
    """A stored event with one dead and two pending jobs; returns the dead job's id."""

    async def go() -> int:
        from gateway.jobs.models import Job
        from gateway.webhooks.models import WebhookEvent

        app = create_app(load_config(config_path))
        test_app = app.test_app()
        await test_app.startup()
        try:
            now = app.extensions["gateway"].clock.now()
            event = await WebhookEvent.create(
                source="s", dedup_key="k", type="t", payload={}, received_at=now
            )
            common = {"event": event, "max_attempts": 3, "run_at": now, "created_at": now}
            for _ in range(2):
                await Job.create(handler="h.ok", updated_at=now, **common)
            dead = await Job.create(
                handler="h.bad",
                status="dead",
                attempts=3,
                last_error="ConnectionError: refused\nmore",
                updated_at=now,
                **common,
            )
            return dead.id
        finally:
            await test_app.shutdown()

    return _run_sync(go())


def test_jobs_shows_depth_and_dead_jobs_and_retries(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        f'database_url = "sqlite://{tmp_path / "gw.db"}"\nauto_migrate = true\n'
    )
    dead_id = seed(config)
    assert main(["--config", str(config), "jobs"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[:6] if line.strip()}
    assert (rows["pending"], rows["dead"], rows["running"]) == ("2", "1", "0")
    assert "h.bad" in out and "ConnectionError: refused" in out and "more" not in out
    assert main(["--config", str(config), "jobs", "--retry", str(dead_id)]) == 0
    assert "queued again" in capsys.readouterr().out
    assert main(["--config", str(config), "jobs", "--retry", str(dead_id)]) == 2  # not dead now
    capsys.readouterr()
    assert main(["--config", str(config), "jobs"]) == 0
    out = capsys.readouterr().out
    assert "dead jobs" not in out and " 3" in out.splitlines()[1]
