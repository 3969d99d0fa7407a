"""``daily-summary`` and ``weekly-report``: the figures of every team in a few
``GROUP BY`` statements (:mod:`plugins.cron.figures`), then one durable job per team
that mails them (:mod:`plugins.cron.mailing`).

Each team's mail is an event of type :data:`MAIL_EVENT` whose dedup key is the run's
window and the team: a retried or forced run of the same window queues nothing for the
teams already queued, and each job, retried on its own when the mail server is down,
mails one team only. The weekly report also emits ``report.weekly.ready`` per team for
the plugins that post team notifications.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from gateway.calls import WEEKLY_REPORT_READY, DayCalls, OutcomeCount, WeeklyReportReady
from gateway.events import EventPayload, emit_events
from gateway.identity import Team
from gateway.mail import mail_configured, not_configured
from gateway.scheduling import TaskContext
from gateway.team_settings import get_many_team_settings
from plugins.cron import periods
from plugins.cron.figures import Figures, aggregate, total
from plugins.cron.settings import CronSettings, CronTeamSettings

log = logging.getLogger("plugins.cron")

NAME = "cron"
SOURCE = "cron"
MAIL_EVENT = "cron.report.mail"
DAILY_TASK, DAILY_SCHEDULE = "daily-summary", "0 18 * * *"  # daily 18:00 UTC
WEEKLY_TASK, WEEKLY_SCHEDULE = "weekly-report", "0 9 * * 1"  # Monday 09:00 UTC
BATCH = 500  # events stored per transaction


async def _teams(ctx: TaskContext) -> tuple[list[dict[str, Any]], dict[int, CronTeamSettings]]:
    teams = await Team.all().order_by("id").values("id", "name", "time_zone")
    prefs = await get_many_team_settings(
        [t["id"] for t in teams], NAME, CronTeamSettings, app=ctx.app
    )
    return teams, prefs


class ReportMail(EventPayload):
    """One team's report to mail (the plugin's own job; see docs/events.md). The rest
    of the report (period, figures) rides along as extra keys."""

    model_config = ConfigDict(extra="allow")
    EVENT_TYPE = MAIL_EVENT

    window_key: str
    team_id: int
    team_name: str
    kind: str

    def dedup_key(self) -> str:
        return f"{self.window_key}:team:{self.team_id}"


class Emitter:
    """Collects a run's events and stores them a batch at a time (one transaction per
    :data:`BATCH`), counting those that were new."""

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.pending: list[EventPayload] = []
        self.teams: list[int | None] = []
        self.new: dict[str, int] = {}
        self.old: dict[str, int] = {}

    async def add(self, payload: EventPayload, team_id: int) -> None:
        self.pending.append(payload)
        self.teams.append(team_id)
        if len(self.pending) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        emitted = await emit_events(
            self.ctx.app, source=SOURCE, payloads=self.pending, team_ids=self.teams
        )
        for payload, result in zip(self.pending, emitted, strict=True):
            counts = self.new if result.new else self.old
            counts[payload.EVENT_TYPE] = counts.get(payload.EVENT_TYPE, 0) + 1
        self.pending, self.teams = [], []

    def mail(self, ctx: TaskContext, team: dict[str, Any], report: dict[str, Any]) -> ReportMail:
        return ReportMail(
            window_key=ctx.window_key, team_id=team["id"], team_name=team["name"], **report
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class DailySummary:
    """The 24 hours before the window, per team."""

    def __init__(self, settings: CronSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        start, end = ctx.previous_window_start, ctx.window_start
        table = await aggregate(periods.daily(start, end), self.settings.meeting_items)
        teams, prefs = await _teams(ctx)
        can_mail = mail_configured(ctx.app)
        counts = {"teams": len(teams), "teams_with_calls": 0, "opted_out": 0, "no_calls": 0}
        emitter = Emitter(ctx)
        for team in teams:
            figures = table.get((team["id"], 0)) or Figures()
            pref = prefs[team["id"]]
            counts["teams_with_calls"] += bool(figures.calls)
            if not figures.calls and not pref.mail_without_calls:
                counts["no_calls"] += 1
            elif not pref.daily_summary_mail:
                counts["opted_out"] += 1
            elif can_mail:
                report = {
                    "kind": "daily",
                    "time_zone": team["time_zone"],
                    "start": _iso(start),
                    "end": _iso(end),
                    "figures": asdict(figures),
                }
                await emitter.add(emitter.mail(ctx, team, report), team["id"])
        await emitter.flush()
        counts["mails_queued"] = emitter.new.get(MAIL_EVENT, 0)
        counts["already_queued"] = emitter.old.get(MAIL_EVENT, 0)
        if not can_mail:
            raise not_configured(ctx.app, counts)
        return counts


class WeeklyReport:
    """The last 7 complete team-local days, compared with the 7 before."""

    def __init__(self, settings: CronSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        teams, prefs = await _teams(ctx)
        table = {}
        if teams:
            buckets = periods.weekly(ctx.window_start, {t["time_zone"] for t in teams})
            table = await aggregate(buckets, self.settings.meeting_items)
        can_mail = mail_configured(ctx.app)
        counts = {"teams": len(teams), "teams_with_calls": 0, "opted_out": 0, "no_calls": 0}
        emitter = Emitter(ctx)
        for team in teams:
            days = periods.week_days(ctx.window_start, periods.zone_of(team["time_zone"]))
            per_day = [table.get((team["id"], i)) or Figures() for i in range(len(days))]
            previous = total(per_day[: periods.WEEK])
            current = total(per_day[periods.WEEK :])
            pref = prefs[team["id"]]
            counts["teams_with_calls"] += bool(current.calls)
            if not current.calls and not pref.mail_without_calls:
                counts["no_calls"] += 1
                continue
            week = list(zip(days[periods.WEEK :], per_day[periods.WEEK :], strict=True))
            ready = self._ready(team, current, previous, week)
            await emitter.add(ready, team["id"])
            if not pref.weekly_report_mail:
                counts["opted_out"] += 1
            elif can_mail:
                report = {
                    "kind": "weekly",
                    "time_zone": team["time_zone"],
                    "period_start": ready.period_start.isoformat(),
                    "period_end": ready.period_end.isoformat(),
                    "figures": asdict(current),
                    "previous": asdict(previous),
                    "days": [d.model_dump(mode="json") for d in ready.days],
                }
                await emitter.add(emitter.mail(ctx, team, report), team["id"])
        await emitter.flush()
        counts["events"] = emitter.new.get(WEEKLY_REPORT_READY, 0)
        counts["mails_queued"] = emitter.new.get(MAIL_EVENT, 0)
        counts["already_queued"] = emitter.old.get(MAIL_EVENT, 0)
        if not can_mail:
            raise not_configured(ctx.app, counts)
        return counts

    def _ready(
        self,
        team: dict[str, Any],
        current: Figures,
        previous: Figures,
        week: list[tuple[Any, Figures]],
    ) -> WeeklyReportReady:
        return WeeklyReportReady(
            team_id=team["id"],
            team_name=team["name"],
            time_zone=team["time_zone"],
            period_start=week[0][0],
            period_end=week[-1][0],
            calls=current.calls,
            previous_calls=previous.calls,
            answered=current.answered,
            success_rate=current.success_rate,
            meetings_booked=current.meetings_booked,
            total_duration_seconds=current.total_duration_seconds,
            top_outcomes=[
                OutcomeCount(outcome=name, count=count)
                for name, count in current.top_outcomes(self.settings.top_outcomes)
            ],
            days=[DayCalls(date=day, calls=figures.calls) for day, figures in week],
        )
