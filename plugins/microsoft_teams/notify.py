"""The ``microsoft_teams.post_card`` handler: which events become which card, and the
ledger row each card is posted under (exactly once through Graph, at least once
through a Workflows webhook).

- ``voice.call.analyzed`` whose data collection holds the meeting field: "meeting
  booked" under (``analysis:<id>``, ``post_meeting_booked``);
- ``voice.call.analyzed`` with outcome ``failure``, or ``voice.call.initiation_failed``:
  "call failed" under (``analysis:<id>``, ``post_call_failed``);
- ``report.weekly.ready``: the weekly report under
  (``weekly_report:<team>:<period_start>``, ``post_weekly_report``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.calls import (
    ANALYZED,
    INITIATION_FAILED,
    WEEKLY_REPORT_READY,
    VoiceCallAnalyzed,
    VoiceCallInitiationFailed,
    WeeklyReportReady,
)
from gateway.config import GatewayConfig
from gateway.events import EventHandler, JobContext
from gateway.sync import analysis_subject, effect
from gateway.team_settings import get_team_settings
from plugins.microsoft_teams import cards, graph, workflows
from plugins.microsoft_teams.settings import NAME, MicrosoftTeamsSettings, TeamsTeamSettings

log = logging.getLogger("plugins.microsoft_teams")

HANDLER = f"{NAME}.post_card"
SUBSCRIBED = (ANALYZED, INITIATION_FAILED, WEEKLY_REPORT_READY)
NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class Notice:
    """One card to post: ``kind`` names the team setting that turns it on."""

    kind: str  # "meeting_booked" | "call_failed" | "weekly_report"
    team_id: int
    subject: str
    card: dict[str, Any]


def _collected(value: Any) -> bool:
    return value not in (None, "", [], {}) and not (
        isinstance(value, str) and value.strip().lower() in {"null", "none", "n/a"}
    )


def analyzed_notice(payload: VoiceCallAnalyzed, settings: TeamsTeamSettings) -> Notice | None:
    if payload.team_id is None:
        return None
    outbound = payload.direction == "outbound"
    number = payload.to_number if outbound else payload.from_number
    facts = cards.call_facts(
        number, payload.direction, payload.started_at, payload.duration_seconds
    )
    summary = payload.summary if settings.include_summary else None
    subject = analysis_subject(payload.analysis_id)
    item = payload.data_collection.get(settings.meeting_field)
    if item is not None and _collected(item.value):
        card = cards.meeting_booked(item.value, facts, summary)
        return Notice("meeting_booked", payload.team_id, subject, card)
    if payload.outcome == "failure":
        return Notice("call_failed", payload.team_id, subject, cards.call_failed(facts, summary))
    return None


def initiation_failed_notice(payload: VoiceCallInitiationFailed) -> Notice | None:
    if payload.team_id is None:
        return None
    outbound = payload.direction != "inbound"  # the agent starts calls: outbound unless told
    number = payload.to_number if outbound else payload.from_number
    card = cards.initiation_failed(
        number, payload.direction, payload.failure_reason, payload.failed_at
    )
    return Notice("call_failed", payload.team_id, analysis_subject(payload.analysis_id), card)


def weekly_notice(report: WeeklyReportReady) -> Notice:
    # Keyed by the team's week, not the event: a report emitted twice is posted once.
    subject = f"weekly_report:{report.team_id}:{report.period_start.isoformat()}"
    return Notice("weekly_report", report.team_id, subject, cards.weekly_report(report))


def team_of(ctx: JobContext) -> int | None:
    team = (ctx.event.payload or {}).get("team_id")
    return int(team) if isinstance(team, int) else ctx.event.team_id


async def notice_for(ctx: JobContext, settings: TeamsTeamSettings) -> Notice | None:
    payload = dict(ctx.event.payload or {})
    payload.setdefault("team_id", ctx.event.team_id)
    if ctx.event.type == ANALYZED:
        return analyzed_notice(VoiceCallAnalyzed.model_validate(payload), settings)
    if ctx.event.type == INITIATION_FAILED:
        return initiation_failed_notice(VoiceCallInitiationFailed.model_validate(payload))
    if ctx.event.type == WEEKLY_REPORT_READY:
        return weekly_notice(WeeklyReportReady.model_validate(payload))
    return None


async def post_card(ctx: JobContext) -> None:
    team_id = team_of(ctx)
    if team_id is None:
        return  # an unrouted event belongs to no team, so to no channel
    op = ctx.config.plugin_config(NAME, MicrosoftTeamsSettings)
    settings = await get_team_settings(team_id, NAME, TeamsTeamSettings, app=ctx.app)
    notice = await notice_for(ctx, settings)
    if notice is None:
        return  # nothing a card is posted for (an ordinary call)
    async with effect(
        ctx.app,
        subject=notice.subject,
        plugin=NAME,
        action=f"post_{notice.kind}",
        team_id=notice.team_id,
    ) as row:
        if row.done:
            return  # a retry, a duplicate delivery, a replay
        if not getattr(settings, notice.kind):
            await row.skip(f"the team's settings turn {notice.kind} cards off")
            return
        if settings.webhook_url is not None:
            url = settings.webhook_url.get_secret_value()
            await workflows.deliver(ctx, op, url, notice.card, row)
            return
        if not (settings.team_id and settings.channel_id):
            await row.skip(NOT_CONFIGURED)
            return
        await graph.deliver(ctx, op, settings, notice.team_id, notice.card, row)


def handlers(config: GatewayConfig) -> list[EventHandler]:
    return [EventHandler(HANDLER, SUBSCRIBED, post_card)]
