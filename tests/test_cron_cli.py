"""``gateway cron list`` and ``gateway cron run NAME [--force]`` as an operator runs
them: runs go through the same once-per-window claim as the HTTP pings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.cli import main


def config_file(tmp_path: Path) -> Path:
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        f'database_url = "sqlite://{tmp_path / "gw.db"}"\nauto_migrate = true\n'
        "[plugins.cron]\n"
    )
    return config


def test_cron_run_once_per_window_then_force_and_list(tmp_path: Path, capsys: Any) -> None:
    config = str(config_file(tmp_path))
    assert main(["--config", config, "cron", "list"]) == 1
    assert "run `gateway migrate`" in capsys.readouterr().err
    assert main(["--config", config, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "cron", "list"]) == 0
    out = capsys.readouterr().out
    header, row, *others = out.splitlines()
    assert header.split()[:3] == ["task", "plugin", "schedule"]
    assert row.startswith("cleanup-recordings  cron    0 3 * * *")
    assert row.endswith("never ran") and " 03:00:00" in row  # the next fire time
    assert [line.split()[0] for line in others] == ["daily-summary", "weekly-report"]

    assert main(["--config", config, "cron", "run", "cleanup-recordings"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("cleanup-recordings: run 1 (window ")
    assert "attempt 1): succeeded" in out and '"expired": 0' in out

    assert main(["--config", config, "cron", "run", "cleanup-recordings"]) == 0
    out = capsys.readouterr().out.strip()
    assert "already ran: cleanup-recordings: run 1" in out

    assert main(["--config", config, "cron", "run", "cleanup-recordings", "--force"]) == 0
    out = capsys.readouterr().out
    assert "run 2 (window " in out and "attempt 2): succeeded" in out

    assert main(["--config", config, "cron", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("succeeded (run 2)")


def test_cron_run_of_an_unknown_task_names_the_known_ones(tmp_path: Path, capsys: Any) -> None:
    assert main(["--config", str(config_file(tmp_path)), "cron", "run", "nope"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the first run's "generated secrets" line
    assert last == (
        "gateway: no scheduled task named 'nope' "
        "(tasks: cleanup-recordings, daily-summary, weekly-report)"
    )
