"""The Adaptive Cards the plugin posts, built from event payloads only.

Cards carry no transcript text: the agent's summary at most (a team setting), the
numbers involved and the outcome. Schema: https://adaptivecards.io/explorer/ (Teams
renders up to version 1.5; these use 1.4 elements only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.calls import WeeklyReportReady

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
SUMMARY_MAX_CHARS = 1000


def adaptive_card(
    title: str,
    *,
    subtitle: str | None = None,
    facts: Sequence[tuple[str, str]] = (),
    text: str | None = None,
    more_facts: Sequence[tuple[str, str]] = (),
    color: str = "Default",
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title,
            "size": "Medium",
            "weight": "Bolder",
            "color": color,
            "wrap": True,
        }
    ]
    if subtitle:
        subtle = {"isSubtle": True, "spacing": "None", "wrap": True}
        body.append({"type": "TextBlock", "text": subtitle, **subtle})
    for group in (facts, more_facts):
        if group:
            body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in group]})
    if text:
        # Untrusted text (the agent's summary of what a caller said) goes in a TextRun,
        # which renders no markdown: no links a caller could talk onto the card.
        body.append({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text}]})
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "unknown"


def shown(value: Any) -> str:
    """A collected value as text (the agent may give a string, a number or an object)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def summary_text(summary: str | None) -> str | None:
    if not summary:
        return None
    summary = summary.strip()
    if len(summary) > SUMMARY_MAX_CHARS:
        summary = summary[: SUMMARY_MAX_CHARS - 1].rstrip() + "…"
    return summary


def call_facts(
    number: str | None,
    direction: str | None,
    started_at: datetime | None,
    duration_seconds: int | None,
) -> list[tuple[str, str]]:
    return [
        ("Caller" if direction != "outbound" else "Called", number or "unknown"),
        ("Direction", direction or "unknown"),
        ("Started", when(started_at)),
        ("Duration", duration(duration_seconds)),
    ]


def meeting_booked(
    meeting: Any, facts: list[tuple[str, str]], summary: str | None
) -> dict[str, Any]:
    card = adaptive_card(
        "Meeting booked",
        subtitle="The voice agent booked a meeting on a call.",
        facts=facts,
        text=summary_text(summary),
        color="Good",
    )
    # The value is what the agent collected from the caller: Teams renders markdown in a
    # Fact.Value (a [link](url) would be clickable), not in a TextRun.
    runs = [
        {"type": "TextRun", "text": "Meeting: ", "weight": "Bolder"},
        {"type": "TextRun", "text": shown(meeting)},
    ]
    card["body"].insert(2, {"type": "RichTextBlock", "inlines": runs})
    return card


def call_failed(facts: list[tuple[str, str]], summary: str | None) -> dict[str, Any]:
    return adaptive_card(
        "Call failed",
        subtitle="The voice agent judged the call unsuccessful.",
        facts=facts,
        text=summary_text(summary),
        color="Attention",
    )


def initiation_failed(
    number: str | None, direction: str | None, reason: str, failed_at: datetime | None
) -> dict[str, Any]:
    return adaptive_card(
        "Call failed",
        subtitle="The voice agent could not start the call.",
        facts=[
            ("Number", number or "unknown"),
            ("Direction", direction or "unknown"),
            ("Reason", reason),
            ("Failed at", when(failed_at)),
        ],
        color="Attention",
    )


def weekly_report(report: WeeklyReportReady) -> dict[str, Any]:
    rate = "n/a" if report.success_rate is None else f"{round(report.success_rate * 100)}%"
    outcomes = ", ".join(f"{o.outcome} {o.count}" for o in report.top_outcomes) or "none"
    return adaptive_card(
        f"Weekly report: {report.team_name}" if report.team_name else "Weekly report",
        subtitle=f"{report.period_start} to {report.period_end} ({report.time_zone})",
        facts=[
            ("Calls", f"{report.calls} (previous week {report.previous_calls})"),
            ("Answered", str(report.answered)),
            ("Success rate", rate),
            ("Meetings booked", str(report.meetings_booked)),
            ("Talk time", duration(report.total_duration_seconds)),
            ("Top outcomes", outcomes),
        ],
        more_facts=[(d.date.strftime("%a %Y-%m-%d"), str(d.calls)) for d in report.days],
    )
