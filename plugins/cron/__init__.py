"""Built-in scheduled tasks (``[plugins.cron]``): ``cleanup-recordings``, daily at
03:00 UTC, deletes recordings whose retention ended (see docs/plugins/cron.md)."""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.scheduling import ScheduledTask
from plugins.cron.cleanup import SCHEDULE, TASK, CleanupRecordings
from plugins.cron.settings import CronSettings

NAME = "cron"


@hookimpl
def register_scheduled_tasks(config: Any) -> list[ScheduledTask]:
    settings = config.plugin_config(NAME, CronSettings)
    return [
        ScheduledTask(
            name=TASK,
            schedule=SCHEDULE,
            handler=CleanupRecordings(settings),
            description="delete recordings past their retention (expires_at)",
        )
    ]
