"""The reports' figures, aggregated by the database (``GROUP BY`` over the calls
tables), never by loading call rows into Python.

A period is cut into buckets (one for the daily summary, one per team-local day for the
weekly report). The buckets' UTC bounds are computed here, per time zone, and sent as
parameters of a ``CASE`` expression (the team's zone, then that zone's bounds) that
gives each row its bucket in the same pass that counts it. So DST is handled by
:mod:`zoneinfo`, not by the database, and the same SQL runs on SQLite and PostgreSQL.
What comes back is one row per (team, bucket[, outcome]).

When a row counts for a period:

- a call: ``started_at`` (``created_at`` when the provider never said) is in it;
- an analysis: the conversation's ``started_at`` (else when it was analyzed) is in it,
  and it was analyzed (``analyzed_at`` set);
- a recording: ``stored_at`` is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import connections

from gateway.calls import Call, CallAnalysis, Recording
from gateway.identity import Team
from plugins.cron.periods import Buckets

# A call was answered when it was ever in progress, or ended "completed" (Twilio's
# status for a call that was picked up and ended normally).
_ANSWERED = "c.answered_at IS NOT NULL OR c.status = 'completed'"
TRUE_VALUES = ("1", "true", "yes")
# The figures the calls query gives, and every count that adds up across buckets.
CALL_COUNTS = (
    "calls",
    "answered",
    "failed",
    "busy",
    "no_answer",
    "timed_calls",
    "total_duration_seconds",
)
COUNTS = (*CALL_COUNTS, "analyzed", "meetings_booked", "recordings", "recording_bytes")


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
        for name in COUNTS:
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


def _cell(table: Table, row: dict[str, Any]) -> Figures:
    """The figures of the row's team and bucket, created on first sight."""
    return table.setdefault((int(row["team_id"]), int(row["idx"])), Figures())


class SqlParams:
    """Placeholders and casts for the connection's dialect."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.postgres = conn.capabilities.dialect == "postgres"
        self.values: list[Any] = []

    def param(self, value: Any, cast: str | None = None) -> str:
        self.values.append(value)
        mark = f"${len(self.values)}" if self.postgres else "?"
        # PostgreSQL cannot tell a parameter's type next to -> or in a bare CASE: say it.
        return f"CAST({mark} AS {cast})" if cast and self.postgres else mark

    def when(self, moment: datetime) -> str:
        # SQLite keeps datetimes as text: the field's own conversion gives the form
        # the ORM stored, so text order is time order.
        if self.postgres:
            return self.param(moment, "timestamptz")
        return self.param(Call._meta.fields_map["started_at"].to_db_value(moment, Call))

    def bucket(self, buckets: Buckets, moment: str, zone: str) -> str:
        """The bucket index of ``moment`` as a SQL expression (NULL outside every
        bucket): a ``CASE`` over the team's zone, then over that zone's bounds. One
        pass over the rows, a handful of comparisons each."""

        def ladder(bounds: list[datetime]) -> str:
            steps = [f"WHEN {moment} < {self.when(bounds[0])} THEN NULL"]
            steps += [
                f"WHEN {moment} < {self.when(hi)} THEN {index}"
                for index, hi in enumerate(bounds[1:])
            ]
            return f"CASE {' '.join(steps)} ELSE NULL END"

        if not buckets.per_zone:
            (bounds,) = buckets.bounds.values()
            return ladder(bounds)
        branches = " ".join(
            f"WHEN {self.param(name, 'text')} THEN {ladder(bounds)}"
            for name, bounds in buckets.bounds.items()
        )
        return f"CASE {zone} {branches} ELSE NULL END"


def _source(table: str, alias: str, buckets: Buckets) -> str:
    """The rows' table, with their team's when buckets depend on its time zone."""
    if buckets.per_zone:
        return f"{table} {alias} JOIN {Team._meta.db_table} t ON t.id = {alias}.team_id"
    return f"{table} {alias}"


def _range(sql: SqlParams, buckets: Buckets, moment: str) -> str:
    return f"{moment} >= {sql.when(buckets.start)} AND {moment} < {sql.when(buckets.end)}"


async def _grouped(
    sql: SqlParams, table: str, alias: str, buckets: Buckets, moment: str, columns: str, totals: str
) -> list[dict[str, Any]]:
    """``totals`` per (team, bucket[, outcome]) over the rows of ``table`` in the
    period. The inner query picks the rows (and their bucket); the outer one groups.
    Pieces are built in the order they appear in the text: SQLite's ``?`` are
    positional."""
    bucket = sql.bucket(buckets, moment, "t.time_zone")
    inner_columns = columns.format(a=alias)
    where = _range(sql, buckets, moment)
    group = "team_id, idx"
    text = (
        f"SELECT {group}, {totals} FROM ("  # noqa: S608
        f"SELECT {alias}.team_id AS team_id, {bucket} AS idx, {inner_columns} "
        f"FROM {_source(table, alias, buckets)} "
        f"WHERE {alias}.team_id IS NOT NULL AND {where}"
        f") x WHERE idx IS NOT NULL GROUP BY {group}"
    )
    return await sql.conn.execute_query_dict(text, sql.values)


async def _calls(table: Table, buckets: Buckets) -> None:
    sql = SqlParams(connections.get("default"))
    rows = await _grouped(
        sql,
        Call._meta.db_table,
        "c",
        buckets,
        "COALESCE(c.started_at, c.created_at)",
        "{a}.status AS status, {a}.duration_seconds AS duration, "
        f"CASE WHEN {_ANSWERED} THEN 1 ELSE 0 END AS answered",
        "COUNT(*) AS calls, SUM(answered) AS answered, "
        "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, "
        "SUM(CASE WHEN status = 'busy' THEN 1 ELSE 0 END) AS busy, "
        "SUM(CASE WHEN status = 'no-answer' THEN 1 ELSE 0 END) AS no_answer, "
        "COUNT(duration) AS timed_calls, COALESCE(SUM(duration), 0) AS total_duration_seconds",
    )
    for row in rows:
        figures = _cell(table, row)
        for name in CALL_COUNTS:
            setattr(figures, name, int(row[name] or 0))


def _meeting(sql: SqlParams, items: Sequence[str]) -> str:
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
    sql = SqlParams(connections.get("default"))
    moment = "COALESCE(a.started_at, a.analyzed_at)"
    outcome = "CASE WHEN a.outcome IN ('success', 'failure') THEN a.outcome ELSE 'unknown' END"
    bucket = sql.bucket(buckets, moment, "t.time_zone")
    meeting = _meeting(sql, meeting_items)
    where = _range(sql, buckets, moment)
    text = (
        "SELECT team_id, idx, outcome, COUNT(*) AS analyzed, SUM(meeting) AS meetings "  # noqa: S608
        f"FROM (SELECT a.team_id AS team_id, {bucket} AS idx, {outcome} AS outcome, "
        f"{meeting} AS meeting "
        f"FROM {_source(CallAnalysis._meta.db_table, 'a', buckets)} "
        f"WHERE a.team_id IS NOT NULL AND a.analyzed_at IS NOT NULL AND {where}"
        ") x WHERE idx IS NOT NULL GROUP BY team_id, idx, outcome"
    )
    for row in await sql.conn.execute_query_dict(text, sql.values):
        figures = _cell(table, row)
        count = int(row["analyzed"] or 0)
        figures.analyzed += count
        figures.outcomes[str(row["outcome"])] = count
        figures.meetings_booked += int(row["meetings"] or 0)


async def _recordings(table: Table, buckets: Buckets) -> None:
    sql = SqlParams(connections.get("default"))
    rows = await _grouped(
        sql,
        Recording._meta.db_table,
        "r",
        buckets,
        "r.stored_at",
        "{a}.size_bytes AS size",
        "COUNT(*) AS recordings, COALESCE(SUM(size), 0) AS recording_bytes",
    )
    for row in rows:
        figures = _cell(table, row)
        figures.recordings = int(row["recordings"] or 0)
        figures.recording_bytes = int(row["recording_bytes"] or 0)


async def aggregate(buckets: Buckets, meeting_items: Sequence[str]) -> Table:
    """Every team's figures per bucket; teams and buckets without any row are absent."""
    table: Table = {}
    await _calls(table, buckets)
    await _analyses(table, buckets, meeting_items)
    await _recordings(table, buckets)
    return table
