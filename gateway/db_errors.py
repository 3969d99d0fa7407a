"""What a database exception means for the caller, and logging an outage once.

:func:`classify` sorts any exception into

- ``"unavailable"``: the database cannot be reached or refuses work for now (connection
  refused or lost, the database dropped or shutting down, too many connections, a lock
  held too long, a serialization failure). Requests get ``503`` with ``Retry-After``.
- ``"input"``: the database refused a value as data (out of range, too long, a NUL, a
  lone surrogate). Input checks (:mod:`gateway.inputs`) should have caught it first;
  answered ``400`` all the same.
- ``"database"``: any other database error (a missing table, a bug in a query).
- ``None``: not a database error.

:class:`OutageLog` turns a stream of failures into two log lines: one when the outage
starts, one when it ends, whatever the number of requests or polls in between.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Literal

from tortoise.exceptions import BaseORMException, DBConnectionError
from tortoise.exceptions import ValidationError as OrmValidationError

try:  # asyncpg is optional (SQLite-only installs)
    import asyncpg
except ImportError:  # pragma: no cover
    asyncpg = None  # type: ignore[assignment]

Kind = Literal["unavailable", "input", "database"]

# SQLSTATE classes: 08 connection, 3D the database does not exist (dropped), 40
# serialization failure/deadlock, 53 insufficient resources, 57 operator intervention
# (shutdown, cancel), 58 system error (I/O). 22 is "data exception".
_UNAVAILABLE_CLASSES = frozenset({"08", "3D", "40", "53", "57", "58"})
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what it wraps (Tortoise keeps the driver's error as its first argument
    or as the cause) and what it was raised from, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (item.__cause__, item.__context__):
            if nxt is not None:
                todo.append(nxt)
        if item.args and isinstance(item.args[0], BaseException):
            todo.append(item.args[0])


def _classify_one(exc: BaseException) -> Kind | None:
    if isinstance(exc, DBConnectionError):
        return "unavailable"
    if isinstance(exc, OrmValidationError | OverflowError | UnicodeEncodeError):
        return "input"
    if asyncpg is not None:
        if isinstance(exc, asyncpg.PostgresError):
            sqlstate = str(getattr(exc, "sqlstate", "") or "")
            if sqlstate[:2] in _UNAVAILABLE_CLASSES:
                return "unavailable"
            if sqlstate[:2] == "22":
                return "input"
            return "database"
        if isinstance(exc, asyncpg.InterfaceError):  # "connection is closed", ...
            return "unavailable"
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "unavailable" if any(s in text for s in _SQLITE_UNAVAILABLE) else "database"
    if isinstance(exc, sqlite3.DataError):
        return "input"
    if isinstance(exc, sqlite3.Error | BaseORMException):
        return "database"
    if isinstance(exc, OSError | TimeoutError):  # refused, reset, unreachable, timed out
        return "unavailable"
    return None


_PRECEDENCE: tuple[Kind, ...] = ("unavailable", "input", "database")


def classify(exc: BaseException) -> Kind | None:
    """The most telling kind found along the exception's chain (see the module doc)."""
    kinds = {_classify_one(item) for item in _chain(exc)}
    for kind in _PRECEDENCE:
        if kind in kinds:
            return kind
    return None


class OutageLog:
    """Logs the start and the end of an outage, not every failure in between, and
    paces the retries of a loop.

    :param what: how log lines name the failing part, e.g. ``"job worker: database"``.
    :param quiet_seconds: without any failure for this long, the outage is considered
        over even if nobody reported a success (request handlers cannot tell).
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        quiet_seconds: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.quiet, self.now = logger, what, quiet_seconds, now
        self.down_since: float | None = None
        self.last_failure = 0.0
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> bool:
        """Count a failure; logs (and answers True) only for the first of an outage.
        The exception's type is logged, never its text (it can hold host names,
        database names or the values of a query)."""
        now = self.now()
        if self.down_since is not None and now - self.last_failure > self.quiet:
            self.down_since = None
        self.last_failure = now
        if self.down_since is None:
            self.down_since, self.failures = now, 1
            self.log.warning("%s unavailable (%s)", self.what, type(exc).__name__)
            return True
        self.failures += 1
        return False

    def ok(self) -> None:
        """A success: ends the outage (and logs that) if there was one."""
        if self.down_since is None:
            return
        elapsed = self.now() - self.down_since
        self.log.warning(
            "%s reachable again after %.1f s (%d failed attempts)",
            self.what,
            elapsed,
            self.failures,
        )
        self.down_since, self.failures = None, 0

    def delay(self, base: float, cap: float = 30.0) -> float:
        """The pause before a loop's next attempt: ``base`` doubled per failure so far
        in this outage, at most ``cap``."""
        if self.failures <= 1:
            return base
        return min(cap, base * 2 ** min(self.failures - 1, 16))
