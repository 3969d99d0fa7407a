"""Built-in scheduled tasks (``[plugins.cron]``), see docs/plugins/cron.md:

- ``cleanup-recordings`` (daily 03:00 UTC): deletes recordings whose retention ended.
- ``daily-summary`` (daily 18:00 UTC) and ``weekly-report`` (Monday 09:00 UTC): each
  team's figures, mailed to its owners and admins by one job per team.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.events import EventHandler
from gateway.scheduling import ScheduledTask
from plugins.cron.cleanup import SCHEDULE, TASK, CleanupRecordings
from plugins.cron.mailing import MailReport
from plugins.cron.reports import (
    DAILY_SCHEDULE,
    DAILY_TASK,
    MAIL_EVENT,
    NAME,
    WEEKLY_SCHEDULE,
    WEEKLY_TASK,
    DailySummary,
    WeeklyReport,
)
from plugins.cron.settings import CronSettings, CronTeamSettings


def load(config: Any) -> CronSettings:
    return config.plugin_config(NAME, CronSettings)


@hookimpl
def register_scheduled_tasks(config: Any) -> list[ScheduledTask]:
    settings = load(config)
    return [
        ScheduledTask(
            name=TASK,
            schedule=SCHEDULE,
            handler=CleanupRecordings(settings),
            description="delete recordings past their retention (expires_at)",
        ),
        ScheduledTask(
            name=DAILY_TASK,
            schedule=DAILY_SCHEDULE,
            handler=DailySummary(settings),
            description="mail each team the figures of the last 24 hours",
        ),
        ScheduledTask(
            name=WEEKLY_TASK,
            schedule=WEEKLY_SCHEDULE,
            handler=WeeklyReport(settings),
            description="mail each team its last 7 days against the 7 before",
        ),
    ]


@hookimpl
def register_event_handlers(config: Any) -> list[EventHandler]:
    return [
        EventHandler(
            name="cron.mail_report", event_types=(MAIL_EVENT,), handler=MailReport(load(config))
        )
    ]


@hookimpl
def register_team_settings(config: Any) -> type[CronTeamSettings]:
    return CronTeamSettings
