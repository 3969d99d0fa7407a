"""The effects ledger: every side effect at a provider, once.

Usage, from any handler (a CRM's call log, a calendar event, a Teams message)::

    async with ledger.effect(ctx.app, subject=f"event:{ctx.event.id}",
                             plugin="acme_calendar", action="create_event",
                             team_id=ctx.event.team_id) as effect:
        if effect.done:
            return                                   # a retry, a duplicate, a replay
        if effect.sent:                              # an earlier attempt may have created it
            found = await search_by_marker(effect.marker)
            if found:
                return await effect.created(found.id, found.url)
        await effect.sending()                       # committed before the request
        made = await create(..., marker=effect.marker)
        await effect.created(made.id, made.url)      # committed before the job completes

Entering claims the row for this job (a lease as long as a job's): a replay that runs
beside the original waits (``RetryLater``, not counted) instead of creating a second
record. A job that died after ``sending()`` leaves ``sent`` set, and the next attempt
searches the provider by ``marker`` before creating anything. The marker is derived from
(subject, plugin, action), so it is the same for every attempt and every replay.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from gateway.events import RetryLater
from gateway.sync.models import DONE, FAILED, PENDING, SKIPPED, Effect
from gateway.sync.session import ProviderSession

T = TypeVar("T")


def marker_for(subject: str, plugin: str, action: str) -> str:
    """The idempotency marker of an effect: ``rgw`` and 29 hex digits, letters and
    digits only so that every provider's search tokenizes it as one word."""
    digest = hashlib.sha256(f"{subject}\0{plugin}\0{action}".encode()).hexdigest()
    return "rgw" + digest[:29]


def analysis_subject(analysis_id: int) -> str:
    return f"analysis:{analysis_id}"


def event_subject(event_id: int) -> str:
    return f"event:{event_id}"


class EffectHandle:
    """The claimed ledger row of one effect (see the module docstring)."""

    def __init__(self, row: Effect, gw: Any, owner: str) -> None:
        self.row, self._gw, self._owner = row, gw, owner

    # -- state ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Already created (by this or any earlier attempt)."""
        return self.row.status == DONE

    @property
    def sent(self) -> bool:
        """An earlier attempt sent the creating request: search by :attr:`marker`."""
        return self.row.status == PENDING and self.row.sent

    @property
    def sent_at(self) -> datetime | None:
        return self.row.sent_at

    @property
    def marker(self) -> str:
        return self.row.marker

    @property
    def provider_id(self) -> str | None:
        return self.row.provider_id

    @property
    def url(self) -> str | None:
        return self.row.url

    @property
    def data(self) -> dict[str, Any]:
        """What earlier steps remembered (:meth:`remember`)."""
        return dict(self.row.data or {})

    # -- transitions (each one committed at once) -----------------------------------

    async def _update(self, **changes: Any) -> None:
        now = self._gw.clock.now()
        changes["updated_at"] = now
        await Effect.filter(id=self.row.id, owner=self._owner).update(**changes)
        for name, value in changes.items():
            setattr(self.row, name, value)

    async def remember(self, **data: Any) -> None:
        """Keep what a step found (JSON values), so a retry does not ask again."""
        await self._update(data={**(self.row.data or {}), **data})

    async def sending(self) -> None:
        """Commit "a request that may create the record is going out" (before it goes)."""
        if not self.row.sent:
            await self._update(sent=True, sent_at=self._gw.clock.now())

    async def unsend(self) -> None:
        """Take back :meth:`sending` when you know that no request went out."""
        if self.row.sent:
            await self._update(sent=False, sent_at=None)

    async def send(self, api: ProviderSession, request: Callable[[], Awaitable[T]]) -> T:
        """:meth:`sending`, then ``await request()``: the call that may create the record.
        When it is deferred before any request went out (it lost the last rate-limit slot
        to another job), "sent" is taken back (:meth:`unsend`), so the next attempt does
        not search for a record that cannot exist. A request that went out keeps "sent",
        whatever the answer: a 429 rarely creates anything, but the search costs less
        than a duplicate."""
        before = api.requests_sent
        await self.sending()
        try:
            return await request()
        except RetryLater:
            if api.requests_sent == before:
                await self.unsend()
            raise

    async def created(self, provider_id: str, url: str | None = None, **data: Any) -> None:
        """The provider created it: its id (and a link), committed before the job ends."""
        now = self._gw.clock.now()
        await self._update(
            status=DONE,
            provider_id=str(provider_id)[:255],
            url=(url or None) and str(url)[:2000],
            detail=None,
            data={**(self.row.data or {}), **data},
            completed_at=now,
        )

    async def skip(self, reason: str) -> None:
        """Nothing to do (not connected, the team's settings say no). A later attempt or
        replay tries again."""
        await self._update(status=SKIPPED, detail=reason[:500], completed_at=self._gw.clock.now())

    async def fail(self, reason: str) -> None:
        """Given up for now (needs reconnect, the provider refused the data); a retry or
        replay of the job tries again."""
        await self._update(status=FAILED, detail=reason[:500], completed_at=self._gw.clock.now())


def _lease(gw: Any) -> timedelta:
    return timedelta(seconds=float(gw.config.gateway.job_lease_seconds))


async def _claim(gw: Any, subject: str, plugin: str, action: str, team_id: int | None) -> Effect:
    """The row, created or taken over for this job: ``owner`` and a lease.

    :raises RetryLater: another job holds it (not counted as an attempt).
    """
    now = gw.clock.now()
    owner = uuid.uuid4().hex
    until = now + _lease(gw)
    row = await Effect.get_or_none(subject=subject, plugin=plugin, action=action)
    if row is None:
        try:
            return await Effect.create(
                team_id=team_id,
                subject=subject,
                plugin=plugin,
                action=action,
                status=PENDING,
                marker=marker_for(subject, plugin, action),
                owner=owner,
                lease_until=until,
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        except IntegrityError:  # a concurrent job created it first
            row = await Effect.get(subject=subject, plugin=plugin, action=action)
    if row.status == DONE:
        return row
    free = Q(lease_until=None) | Q(lease_until__lt=now)
    took = await Effect.filter(free, id=row.id, status=row.status).update(
        owner=owner,
        lease_until=until,
        status=PENDING,
        attempts=row.attempts + 1,
        updated_at=now,
    )
    if not took:
        fresh = await Effect.get(id=row.id)
        if fresh.status == DONE:
            return fresh
        wait = (fresh.lease_until - now).total_seconds() if fresh.lease_until else 1.0
        reason = f"{plugin}.{action} is being done by another job"
        raise RetryLater(max(1.0, wait), reason, count_attempt=False)
    # Read again: the previous owner may have written (``sent``, ``data``) between our
    # first read and its release; from now on only we write.
    return await Effect.get(id=row.id)


@asynccontextmanager
async def effect(
    app: Any, *, subject: str, plugin: str, action: str, team_id: int | None = None
) -> AsyncIterator[EffectHandle]:
    """Claim the ledger row of one effect for this job (see the module docstring).

    :param app: the Quart app (``ctx.app``) or its Gateway.
    :param subject: what the effect is about: :func:`analysis_subject` for a call,
        :func:`event_subject` for an event, or your own ``"<kind>:<id>"``.
    :param plugin: your plugin's name. :param action: e.g. ``"log_call"``.
    :raises RetryLater: another job is doing this effect right now (not counted).
    """
    gw = app.extensions["gateway"] if hasattr(app, "extensions") else app
    row = await _claim(gw, subject, plugin, action, team_id)
    handle = EffectHandle(row, gw, row.owner or "")
    try:
        yield handle
    finally:
        # Give the row back at once (done or not): the next attempt need not wait.
        await Effect.filter(id=row.id, owner=handle._owner).update(lease_until=None)


def effect_json(row: Effect) -> dict[str, Any]:
    """One ledger row as the API and the call timeline show it (no personal data)."""
    from gateway.responses import iso

    return {
        "id": row.id,
        "subject": row.subject,
        "plugin": row.plugin,
        "action": row.action,
        "status": row.status,
        "provider_id": row.provider_id,
        "url": row.url,
        "detail": row.detail,
        "sent": row.sent,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "completed_at": iso(row.completed_at),
    }


async def effects_for(subject: str) -> list[Effect]:
    return await Effect.filter(subject=subject).order_by("id")


async def effects_for_call(call_or_analysis: Any) -> list[Effect]:
    """Every ledger row of a call: give the :class:`~gateway.calls.models.CallAnalysis`
    or the :class:`~gateway.calls.models.Call` row (its analysis is found)."""
    from gateway.calls.analysis import analysis_for_call
    from gateway.calls.models import Call

    analysis = call_or_analysis
    if isinstance(call_or_analysis, Call):
        analysis = await analysis_for_call(call_or_analysis)
        if analysis is None:
            return []
    return await effects_for(analysis_subject(int(analysis.id)))


__all__ = [
    "DONE",
    "FAILED",
    "PENDING",
    "SKIPPED",
    "EffectHandle",
    "analysis_subject",
    "effect",
    "effect_json",
    "effects_for",
    "effects_for_call",
    "event_subject",
    "marker_for",
]
