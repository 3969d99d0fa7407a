"""The report mails: plain text and HTML from a report's figures.

The HTML uses tables and inline styles only (what mail clients render); the weekly
chart is a table of bars whose widths are percentages, so it needs no image, external
or inline. Every value from the database (the team's name, outcomes) is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any

from plugins.cron.figures import Figures
from plugins.cron.periods import zone_of

BAR_COLOUR = "#2f6fde"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def duration(seconds: float | None) -> str:
    """``1h 02m 03s``, ``2m 05s``, ``45s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{round(rate * 100)}%"


def change(now: int, before: int) -> str:
    """``+25%`` / ``-10%`` / ``new`` (nothing before) / ``0%``."""
    if before == 0:
        return "new" if now else "0%"
    return f"{round((now - before) * 100 / before):+d}%"


def one_line(text: str) -> str:
    """A team name is free text: in the subject (a header) a line break would make the
    mail unsendable, so every run of whitespace becomes one space."""
    return " ".join(text.split())


def local_span(start: datetime, end: datetime, zone_name: str) -> str:
    zone = zone_of(zone_name)
    fmt = "%a %d %b %Y %H:%M %Z"
    return f"{start.astimezone(zone).strftime(fmt)} - {end.astimezone(zone).strftime(fmt)}"


def _lines(figures: Figures, top: int) -> list[tuple[str, str]]:
    """The figures as (label, value) rows, shared by both mails and both bodies."""
    outcomes = ", ".join(f"{name} {count}" for name, count in figures.top_outcomes(top)) or "-"
    rate = percent(figures.success_rate)
    if figures.analyzed:
        rate += f" ({figures.outcomes.get('success', 0)} of {figures.analyzed} analyzed calls)"
    return [
        ("Calls", str(figures.calls)),
        ("Answered", str(figures.answered)),
        ("Failed / busy / no answer", f"{figures.failed} / {figures.busy} / {figures.no_answer}"),
        ("Average duration", duration(figures.average_duration_seconds)),
        ("Total duration", duration(figures.total_duration_seconds)),
        ("Success rate", rate),
        ("Top outcomes", outcomes),
        ("Meetings booked", str(figures.meetings_booked)),
        ("Recordings stored", str(figures.recordings)),
    ]


def _text_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in rows)


def _html_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><td style="padding:2px 12px 2px 0;color:#555">{escape(label)}</td>'
        f'<td style="padding:2px 0;font-weight:bold">{escape(value)}</td></tr>'
        for label, value in rows
    )
    return f'<table role="presentation" cellpadding="0" cellspacing="0">{cells}</table>'


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222">'
        f'<h2 style="margin:0 0 4px 0">{escape(title)}</h2>'
        f'<p style="margin:0 0 16px 0;color:#555">{escape(subtitle)}</p>'
        f"{body}"
        '<p style="margin-top:24px;color:#888;font-size:12px">'
        "Team admins can turn this mail off in the team's cron settings.</p>"
        "</body></html>"
    )


def daily(report: dict[str, Any], top: int) -> Rendered:
    figures = Figures(**report["figures"])
    team = one_line(report["team_name"])
    start = datetime.fromisoformat(report["start"])
    end = datetime.fromisoformat(report["end"])
    span = f"{local_span(start, end, report['time_zone'])} ({report['time_zone']})"
    title = f"Daily summary for {team}"
    rows = _lines(figures, top)
    text = f"{title}\n{span}\n\n{_text_table(rows)}\n"
    return Rendered(
        subject=f"{title}: {figures.calls} calls",
        text=text,
        html=_page(title, span, _html_table(rows)),
    )


def _chart_html(days: list[tuple[date, int]]) -> str:
    peak = max((count for _, count in days), default=0) or 1
    rows = []
    for day, count in days:
        width = round(count * 100 / peak)
        bar = (
            f'<td width="{width}%" bgcolor="{BAR_COLOUR}" '
            f'style="background:{BAR_COLOUR};height:14px;font-size:1px;line-height:1px">&nbsp;</td>'
            if width
            else ""
        )
        rest = (
            f'<td width="{100 - width}%" style="font-size:1px">&nbsp;</td>' if width < 100 else ""
        )
        rows.append(
            "<tr>"
            f'<td style="padding:2px 8px 2px 0;white-space:nowrap">{day:%a %d %b}</td>'
            f'<td width="300" style="padding:2px 0"><table role="presentation" width="100%" '
            f'cellpadding="0" cellspacing="0"><tr>{bar}{rest}</tr></table></td>'
            f'<td style="padding:2px 0 2px 8px;text-align:right">{count}</td>'
            "</tr>"
        )
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" '
        f'style="margin-top:16px">{"".join(rows)}</table>'
    )


def _chart_text(days: list[tuple[date, int]]) -> str:
    peak = max((count for _, count in days), default=0) or 1
    return "\n".join(
        f"{day:%a %Y-%m-%d} {'#' * round(count * 30 / peak):<30} {count}" for day, count in days
    )


def weekly(report: dict[str, Any], top: int) -> Rendered:
    figures = Figures(**report["figures"])
    previous = Figures(**report["previous"])
    days = [(date.fromisoformat(d["date"]), int(d["calls"])) for d in report["days"]]
    team = one_line(report["team_name"])
    span = f"{report['period_start']} - {report['period_end']} ({report['time_zone']})"
    title = f"Weekly report for {team}"
    rows = _lines(figures, top)
    comparison = [
        ("Calls, previous 7 days", f"{previous.calls} ({change(figures.calls, previous.calls)})"),
        (
            "Answered, previous 7 days",
            f"{previous.answered} ({change(figures.answered, previous.answered)})",
        ),
        ("Success rate, previous 7 days", percent(previous.success_rate)),
        ("Meetings booked, previous 7 days", str(previous.meetings_booked)),
    ]
    text = (
        f"{title}\n{span}\n\n{_text_table(rows)}\n\n{_text_table(comparison)}\n\n"
        f"Calls per day\n{_chart_text(days)}\n"
    )
    body = (
        _html_table(rows)
        + '<h3 style="margin:16px 0 4px 0">Compared with the 7 days before</h3>'
        + _html_table(comparison)
        + '<h3 style="margin:16px 0 4px 0">Calls per day</h3>'
        + _chart_html(days)
    )
    first, last = (
        date.fromisoformat(report["period_start"]),
        date.fromisoformat(report["period_end"]),
    )
    return Rendered(
        subject=f"{title}: {figures.calls} calls, {first.day} {first:%b} - {last.day} {last:%b}",
        text=text,
        html=_page(title, span, body),
    )
