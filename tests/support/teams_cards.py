"""What the Microsoft Teams card tests share: the team's Graph channel, the events that
make cards, the cards the gateway must send (tests/plugins/test_microsoft_teams_cards.py
for Graph, test_microsoft_teams_workflows.py for the Workflows webhook)."""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.events import emit_event
from gateway.testing import analyzed_call, connected_admin
from gateway.testing.calls import CALLER
from tests.support.fake_microsoft import (
    CHANNEL_ID,
    TEAM_GROUP_ID,
    FakeMicrosoft,
    plugin_settings,
)

NAME = "microsoft_teams"
HANDLER = "microsoft_teams.post_card"
PATH = f"/v1.0/teams/{TEAM_GROUP_ID}/channels/{CHANNEL_ID}/messages"
READ_SCOPES = [
    "openid",
    "profile",
    "offline_access",
    "User.Read",
    "ChannelMessage.Send",
    "ChannelMessage.Read.All",
]
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
WEEK = {
    "team_id": 0,  # set per test
    "team_name": "Acme Sales",
    "time_zone": "Europe/Berlin",
    "period_start": "2026-01-05",
    "period_end": "2026-01-11",
    "calls": 42,
    "previous_calls": 30,
    "answered": 35,
    "success_rate": 0.625,
    "meetings_booked": 6,
    "total_duration_seconds": 12345,
    "top_outcomes": [{"outcome": "success", "count": 20}, {"outcome": "failure", "count": 12}],
    "days": [{"date": "2026-01-05", "calls": 10}, {"date": "2026-01-06", "calls": 32}],
}


async def teams_app(make_app: Any, ms: FakeMicrosoft, db: str = "sqlite", **extra: Any) -> Any:
    return await make_app(db=db, plugins={NAME: plugin_settings(ms, **extra)})


async def setup_team(app: Any, *, connect: bool = True, **team_settings: Any) -> Any:
    return await connected_admin(app, NAME, connect=connect, settings=team_settings)


CHANNEL = {"team_id": TEAM_GROUP_ID, "channel_id": CHANNEL_ID}


async def call(
    app: Any,
    team_id: int,
    conversation_id: str = "conv_1",
    *,
    outcome: str = "success",
    collected: dict[str, Any] | None = None,
    summary: str = "Booked a demo for Tuesday.",
) -> Any:
    return await analyzed_call(
        app, team_id, conversation_id, outcome=outcome, collected=collected, summary=summary
    )


async def weekly(app: Any, team_id: int, key: str = "w1") -> Any:
    return await emit_event(
        app,
        source="cron.weekly_report",
        type="report.weekly.ready",
        dedup_key=f"{team_id}:{key}",
        payload={**WEEK, "team_id": team_id},
        team_id=team_id,
    )


def sent_card(request: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = request["json"]["attachments"]
    return json.loads(attachment["content"])


def meeting_card(summary: str = "Booked a demo for Tuesday.") -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": "Meeting booked",
                "size": "Medium",
                "weight": "Bolder",
                "color": "Good",
                "wrap": True,
            },
            {
                "type": "TextBlock",
                "text": "The voice agent booked a meeting on a call.",
                "isSubtle": True,
                "spacing": "None",
                "wrap": True,
            },
            {
                "type": "RichTextBlock",
                "inlines": [
                    {"type": "TextRun", "text": "Meeting: ", "weight": "Bolder"},
                    {"type": "TextRun", "text": "2026-01-06T15:00:00+01:00"},
                ],
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Caller", "value": CALLER},
                    {"title": "Direction", "value": "inbound"},
                    {"title": "Started", "value": "2026-01-01 12:00 UTC"},
                    {"title": "Duration", "value": "1 min 2 s"},
                ],
            },
            {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": summary}]},
        ],
    }


def high_logs(caplog: Any) -> str:
    """The gateway's log lines above DEBUG (the fakes' own access logs left out)."""
    return "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.levelno > logging.DEBUG and not r.name.startswith("aiohttp.")
    )
