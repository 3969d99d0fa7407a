"""Cron expressions, parsed by croniter, and the schedule windows they define.

A window starts at a fire time and ends at the next one. The window a run belongs to is
the one that contains "now": the latest fire time at or before now. Everything is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter


class CronSchedule:
    """A validated cron expression: five fields (minute hour day month weekday), an
    optional sixth for seconds (croniter's convention), or an alias like ``@daily``.

    :raises ValueError: with a short reason when the expression is not valid.
    """

    def __init__(self, expression: str) -> None:
        text = " ".join(str(expression).split())
        fields = text.split(" ")
        if not text or (not text.startswith("@") and len(fields) not in (5, 6)):
            raise ValueError("expected 5 fields (minute hour day month weekday) or 6 with seconds")
        if not croniter.is_valid(text):
            raise ValueError("not a valid cron expression")
        self.expression = text

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r})"

    def _iter(self, start: datetime) -> croniter:
        return croniter(self.expression, start.astimezone(UTC))

    def window_at(self, now: datetime, early_seconds: float = 0) -> datetime:
        """The start of the window containing ``now``: the latest fire time <= now.

        :param early_seconds: a fire time at most this far ahead (and at most a tenth
            of the period) counts as reached already, for a pinger that fires early.
        """
        # croniter's get_prev is strictly before its start, so a "now" that is exactly
        # a fire time is checked by stepping forward once.
        previous: datetime = self._iter(now).get_prev(datetime)
        following: datetime = self._iter(previous).get_next(datetime)
        if following <= now:
            return following
        ahead = (following - now).total_seconds()
        period = (following - previous).total_seconds()
        if early_seconds > 0 and ahead <= min(early_seconds, period / 10):
            return following
        return previous

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after ``when``."""
        return self._iter(when).get_next(datetime)

    def previous_before(self, when: datetime) -> datetime:
        """The last fire time strictly before ``when``."""
        return self._iter(when).get_prev(datetime)
