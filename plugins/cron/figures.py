"""The reports' figures, aggregated by the database (``GROUP BY`` over the calls
tables), never by loading call rows into Python.

A period is cut into buckets (one for the daily summary, one per team-local day for the
weekly report). The buckets' UTC bounds are computed here, per time zone, and sent as a
small ``VALUES`` table; the database joins every call to its team's bucket and counts.
So DST is handled by :mod:`zoneinfo`, not by the database, and the same SQL runs on
SQLite and PostgreSQL. What comes back is one row per (team, bucket[, outcome]).

When a row counts for a period:

- a call: ``started_at`` (``created_at`` when the provider never said) is in it;
- an analysis: the conversation's ``started_at`` (else when it was analyzed) is in it,
  and it was analyzed (``analyzed_at`` set);
- a recording: ``stored_at`` is in it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import connections

from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.identity.models import Team
from plugins.cron.periods import Buckets

# A call was answered when it was ever in progress, or ended "completed" (Twilio's
# status for a call that was picked up and ended normally).
_ANSWERED = "c.answered_at IS NOT NULL OR c.status = 'completed'"
TRUE_VALUES = ("1", "true", "yes")


@dataclass
class Figures:
    """One team's figures over one bucket (or a sum of buckets)."""

    calls: int = 0
    answered: int = 0
    failed: int = 0
    busy: int = 0
    no_answer: int = 0
    timed_calls: int = 0  # calls with a known duration (the average's denominator)
    total_duration_seconds: int = 0
    analyzed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    meetings_booked: int = 0
    recordings: int = 0
    recording_bytes: int = 0

    @property
    def average_duration_seconds(self) -> float | None:
        if not self.timed_calls:
            return None
        return self.total_duration_seconds / self.timed_calls

    @property
    def success_rate(self) -> float | None:
        """Successes over analyzed calls (0..1); ``None`` when none was analyzed."""
        if not self.analyzed:
            return None
        return self.outcomes.get("success", 0) / self.analyzed

    def top_outcomes(self, limit: int) -> list[tuple[str, int]]:
        ranked = sorted(self.outcomes.items(), key=lambda item: (-item[1], item[0]))
        return [(name, count) for name, count in ranked if count][:limit]

    def add(self, other: Figures) -> None:
        for name in (
            "calls",
            "answered",
            "failed",
            "busy",
            "no_answer",
            "timed_calls",
            "total_duration_seconds",
            "analyzed",
            "meetings_booked",
            "recordings",
            "recording_bytes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for outcome, count in other.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count


def total(figures: Iterable[Figures]) -> Figures:
    out = Figures()
    for item in figures:
        out.add(item)
    return out


# (team id, bucket index) -> figures
Table = dict[tuple[int, int], Figures]


class _Sql:
    """Placeholders and casts for the connection's dialect."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.postgres = conn.capabilities.dialect == "postgres"
        self.values: list[Any] = []

    def param(self, value: Any, cast: str | None = None) -> str:
        self.values.append(value)
        mark = f"${len(self.values)}" if self.postgres else "?"
        # PostgreSQL cannot tell a parameter's type inside VALUES or next to ->: say it.
        return f"CAST({mark} AS {cast})" if cast and self.postgres else mark

    def when(self, moment: datetime) -> str:
        # SQLite keeps datetimes as text: the field's own conversion gives the form
        # the ORM stored, so text order is time order.
        if self.postgres:
            return self.param(moment, "timestamptz")
        return self.param(Call._meta.fields_map["started_at"].to_db_value(moment, Call))

    def buckets_cte(self, buckets: Buckets) -> str:
        rows = []
        for zone, bounds in buckets.bounds.items():
            for index, (lo, hi) in enumerate(itertools.pairwise(bounds)):
                rows.append(
                    f"({self.param(zone, 'text')}, {self.param(index, 'integer')}, "
                    f"{self.when(lo)}, {self.when(hi)})"
                )
        return f"b(zone, idx, lo, hi) AS (VALUES {', '.join(rows)})"


def _join(buckets: Buckets, moment: str, team: str) -> str:
    """Join each row to its bucket: by the team's time zone when buckets differ per
    zone, else to the one set of buckets."""
    teams = Team._meta.db_table
    if buckets.per_zone:
        return (
            f"JOIN {teams} t ON t.id = {team} "
            f"JOIN b ON b.zone = t.time_zone AND {moment} >= b.lo AND {moment} < b.hi"
        )
    return f"JOIN b ON {moment} >= b.lo AND {moment} < b.hi"


def _range(sql: _Sql, buckets: Buckets, moment: str) -> str:
    return f"{moment} >= {sql.when(buckets.start)} AND {moment} < {sql.when(buckets.end)}"


async def _calls(table: Table, buckets: Buckets) -> None:
    sql = _Sql(connections.get("default"))
    moment = "COALESCE(c.started_at, c.created_at)"
    cte = sql.buckets_cte(buckets)
    text = (
        f"WITH {cte} SELECT c.team_id AS team_id, b.idx AS idx, COUNT(*) AS calls, "  # noqa: S608
        f"SUM(CASE WHEN {_ANSWERED} THEN 1 ELSE 0 END) AS answered, "
        "SUM(CASE WHEN c.status = 'failed' THEN 1 ELSE 0 END) AS failed, "
        "SUM(CASE WHEN c.status = 'busy' THEN 1 ELSE 0 END) AS busy, "
        "SUM(CASE WHEN c.status = 'no-answer' THEN 1 ELSE 0 END) AS no_answer, "
        "COUNT(c.duration_seconds) AS timed_calls, "
        "COALESCE(SUM(c.duration_seconds), 0) AS total_duration_seconds "
        f"FROM {Call._meta.db_table} c {_join(buckets, moment, 'c.team_id')} "
        f"WHERE c.team_id IS NOT NULL AND {_range(sql, buckets, moment)} "
        "GROUP BY c.team_id, b.idx"
    )
    for row in await sql.conn.execute_query_dict(text, sql.values):
        figures = table.setdefault((int(row["team_id"]), int(row["idx"])), Figures())
        for name in (
            "calls",
            "answered",
            "failed",
            "busy",
            "no_answer",
            "timed_calls",
            "total_duration_seconds",
        ):
            setattr(figures, name, int(row[name] or 0))


def _meeting(sql: _Sql, items: Sequence[str]) -> str:
    """A call booked a meeting when any of ``items`` in its data collection holds a true
    value, as ``{"value": ...}`` (what agents store) or bare."""
    tests = []
    for item in items:
        if sql.postgres:
            key = sql.param(item, "text")
            tests += [
                f"LOWER(a.data_collection -> {key} ->> 'value')",
                f"LOWER(a.data_collection ->> {key})",
            ]
        else:
            quoted = item.replace('"', "")
            tests += [
                f"LOWER(CAST(json_extract(a.data_collection, {sql.param(f'$.{quoted}.value')})"
                " AS TEXT))",
                f"LOWER(CAST(json_extract(a.data_collection, {sql.param(f'$.{quoted}')}) AS TEXT))",
            ]
    truthy = ", ".join(f"'{v}'" for v in TRUE_VALUES)
    if not tests:
        return "0"
    return "CASE WHEN " + " OR ".join(f"{t} IN ({truthy})" for t in tests) + " THEN 1 ELSE 0 END"


async def _analyses(table: Table, buckets: Buckets, meeting_items: Sequence[str]) -> None:
    sql = _Sql(connections.get("default"))
    moment = "COALESCE(a.started_at, a.analyzed_at)"
    cte = sql.buckets_cte(buckets)
    outcome = "CASE WHEN a.outcome IN ('success', 'failure') THEN a.outcome ELSE 'unknown' END"
    meeting = _meeting(sql, meeting_items)
    text = (
        f"WITH {cte} SELECT a.team_id AS team_id, b.idx AS idx, {outcome} AS outcome, "  # noqa: S608
        f"COUNT(*) AS analyzed, SUM({meeting}) AS meetings "
        f"FROM {CallAnalysis._meta.db_table} a {_join(buckets, moment, 'a.team_id')} "
        f"WHERE a.team_id IS NOT NULL AND a.analyzed_at IS NOT NULL "
        f"AND {_range(sql, buckets, moment)} "
        f"GROUP BY a.team_id, b.idx, {outcome}"
    )
    for row in await sql.conn.execute_query_dict(text, sql.values):
        figures = table.setdefault((int(row["team_id"]), int(row["idx"])), Figures())
        count = int(row["analyzed"] or 0)
        figures.analyzed += count
        figures.outcomes[str(row["outcome"])] = count
        figures.meetings_booked += int(row["meetings"] or 0)


async def _recordings(table: Table, buckets: Buckets) -> None:
    sql = _Sql(connections.get("default"))
    moment = "r.stored_at"
    cte = sql.buckets_cte(buckets)
    text = (
        f"WITH {cte} SELECT r.team_id AS team_id, b.idx AS idx, COUNT(*) AS recordings, "  # noqa: S608
        "COALESCE(SUM(r.size_bytes), 0) AS recording_bytes "
        f"FROM {Recording._meta.db_table} r {_join(buckets, moment, 'r.team_id')} "
        f"WHERE r.team_id IS NOT NULL AND {_range(sql, buckets, moment)} "
        "GROUP BY r.team_id, b.idx"
    )
    for row in await sql.conn.execute_query_dict(text, sql.values):
        figures = table.setdefault((int(row["team_id"]), int(row["idx"])), Figures())
        figures.recordings = int(row["recordings"] or 0)
        figures.recording_bytes = int(row["recording_bytes"] or 0)


async def aggregate(buckets: Buckets, meeting_items: Sequence[str]) -> Table:
    """Every team's figures per bucket; teams and buckets without any row are absent."""
    table: Table = {}
    await _calls(table, buckets)
    await _analyses(table, buckets, meeting_items)
    await _recordings(table, buckets)
    return table
