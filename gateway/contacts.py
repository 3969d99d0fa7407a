"""Caller lookup for the personalization hot path: ask every ``lookup_contact``
implementation, in pluggy's call order, within one deadline; the first answer wins and
the later implementations are not run (see :mod:`gateway.dispatch`).

- :func:`find_contact`: the answer and which plugin gave it (:class:`ContactAnswer`).
- :func:`lookup_contact`: only the contact (a dict or ``None``).
- :class:`ContactCache`: the same behind a per-process cache keyed by (team, phone),
  negative answers included, expiring on the gateway clock, with one lookup in flight
  per key however many calls ask at once.

Implementations should be ``async``: a plain function runs on the event loop, so the
deadline cannot interrupt one that blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quart import Quart, has_app_context

from gateway.dispatch import await_me_maybe, discard, pending_calls

log = logging.getLogger("gateway.contacts")

DEFAULT_DEADLINE_S = 0.8


@dataclass(frozen=True)
class ContactAnswer:
    """What a lookup found.

    :param contact: the first non-``None`` answer (a dict of contact details), or ``None``.
    :param answered_by: the plugin whose implementation gave ``contact``.
    :param complete: every implementation asked answered in time without raising, so a
        ``None`` contact means "nobody knows this number" (cacheable), not "we could not
        ask" (a missed deadline or a failing plugin).
    """

    contact: dict[str, Any] | None
    answered_by: str | None = None
    complete: bool = True


MISSED = ContactAnswer(None, None, complete=False)


async def find_contact(
    app: Quart, team: Any, phone: str, deadline: float = DEFAULT_DEADLINE_S
) -> ContactAnswer:
    """Ask the ``lookup_contact`` implementations for ``phone``, within ``deadline``
    seconds for all of them together: a slow one is cancelled and skipped (and logged)
    rather than holding up the call, a failing one is skipped (and logged).

    Implementations run in ``app``'s context (the core's CRM lookup reads tokens through
    it): the caller's own when it has one (a request, a job), else one pushed here for a
    caller such as a script or a test that holds only the app."""
    if not has_app_context():
        async with app.app_context():
            return await find_contact(app, team, phone, deadline)
    gw = app.extensions["gateway"]
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    complete = True
    pending = pending_calls(gw.pm, "lookup_contact", team=team, phone=phone, config=gw.config)
    for index, (plugin, call) in enumerate(pending):
        remaining = ends_at - loop.time()
        if remaining <= 0:
            log.warning("contact lookup deadline reached before plugin '%s'", plugin)
            discard(pending[index:])
            return ContactAnswer(None, None, complete=False)
        try:
            result = await asyncio.wait_for(await_me_maybe(call), remaining)
        except TimeoutError:
            log.warning("contact lookup by plugin '%s' missed the deadline", plugin)
            complete = False
            continue
        except Exception:  # one CRM failing must not fail the call
            log.exception("contact lookup by plugin '%s' failed", plugin)
            complete = False
            continue
        if result is None:
            continue
        if not isinstance(result, Mapping):
            log.warning("contact lookup by plugin '%s' returned a non-mapping; ignored", plugin)
            complete = False
            continue
        discard(pending[index + 1 :])
        return ContactAnswer(dict(result), plugin, complete=True)
    return ContactAnswer(None, None, complete=complete)


async def lookup_contact(
    app: Quart, team: Any, phone: str, deadline: float = DEFAULT_DEADLINE_S
) -> dict[str, Any] | None:
    """The first non-``None`` contact for ``phone``, or ``None`` (see
    :func:`find_contact`)."""
    return (await find_contact(app, team, phone, deadline)).contact


def _team_key(team: Any) -> Any:
    return getattr(team, "id", team)


class ContactCache:
    """:func:`find_contact` behind a cache, for one process.

    Keyed by (team id, phone). A found contact and a complete "nobody" are both kept for
    ``ttl_seconds`` of the gateway clock (so tests move a ``FrozenClock`` instead of
    waiting); a lookup that missed its deadline or failed is not kept, so the next call
    asks again. At most ``max_entries`` answers are kept (least recently used dropped).
    Calls for a key whose lookup is already running wait for that one, each only up to
    its own deadline.
    """

    def __init__(self, app: Quart, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.app = app
        self.clock = app.extensions["gateway"].clock
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[Any, str], tuple[float, ContactAnswer]] = OrderedDict()
        self._running: dict[tuple[Any, str], asyncio.Task[ContactAnswer]] = {}
        self.lookups = 0  # lookups actually run (not answered from the cache)

    def cached(self, team: Any, phone: str) -> ContactAnswer | None:
        """The cached answer for (team, phone) if still fresh."""
        key = (_team_key(team), phone)
        entry = self._answers.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if self.clock.monotonic() >= expires:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return answer

    async def lookup(self, team: Any, phone: str, *, deadline: float) -> tuple[ContactAnswer, bool]:
        """``(answer, from_cache)``; never takes longer than ``deadline`` seconds."""
        answer = self.cached(team, phone)
        if answer is not None:
            return answer, True
        key = (_team_key(team), phone)
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key, team, phone, deadline))
            task.add_done_callback(_log_failure)
            self._running[key] = task
        try:
            # shield: one caller giving up must not cancel the lookup others wait for.
            return await asyncio.wait_for(asyncio.shield(task), max(deadline, 0)), False
        except TimeoutError:
            return MISSED, False

    async def _run(self, key: tuple[Any, str], team: Any, phone: str, deadline: float) -> Any:
        self.lookups += 1
        try:
            answer = await find_contact(self.app, team, phone, deadline)
        finally:
            self._running.pop(key, None)
        if answer.complete and self.ttl > 0:
            self._answers[key] = (self.clock.monotonic() + self.ttl, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
        return answer

    def clear(self) -> None:
        self._answers.clear()


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A lookup that raised past :func:`find_contact` (a hook wrapper, say): logged here,
    whether or not a caller was still waiting for it."""
    if not task.cancelled() and task.exception() is not None:
        log.error("contact lookup failed", exc_info=task.exception())
