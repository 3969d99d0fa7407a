"""The periods the reports cover, as UTC bounds computed per team time zone.

- daily summary: the 24 hours before the run's window (the same instant range for every
  team; only its display is local).
- weekly report: the last 7 complete team-local days before the window (Monday 09:00
  UTC is still Sunday in Hawaii: there the week shown ends on Saturday), and the 7
  before them. A local day is 23 or 25 hours on a DST change: its bounds are local
  midnights, converted by :mod:`zoneinfo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEK = 7


def zone_of(name: str | None) -> ZoneInfo:
    """The team's zone; an unknown name falls back to UTC rather than losing a report."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Buckets:
    """Consecutive ``[lo, hi)`` buckets: ``bounds[zone]`` lists n+1 instants for n
    buckets. ``per_zone``: rows are matched by their team's ``time_zone`` (else there is
    one zone key, ``"*"``, for everyone)."""

    bounds: dict[str, list[datetime]]
    per_zone: bool

    @property
    def start(self) -> datetime:
        return min(b[0] for b in self.bounds.values())

    @property
    def end(self) -> datetime:
        return max(b[-1] for b in self.bounds.values())


def daily(start: datetime, end: datetime) -> Buckets:
    return Buckets({"*": [start, end]}, per_zone=False)


def week_days(window_start: datetime, zone: ZoneInfo) -> list[date]:
    """The 14 team-local dates: the previous week's 7, then the reported week's 7."""
    today = window_start.astimezone(zone).date()  # not complete yet
    return [today - timedelta(days=n) for n in range(2 * WEEK, 0, -1)]


def weekly(window_start: datetime, zone_names: set[str]) -> Buckets:
    bounds: dict[str, list[datetime]] = {}
    for name in zone_names:
        zone = zone_of(name)
        days = week_days(window_start, zone)
        bounds[name] = [local_midnight(d, zone) for d in [*days, days[-1] + timedelta(days=1)]]
    return Buckets(bounds, per_zone=True)
