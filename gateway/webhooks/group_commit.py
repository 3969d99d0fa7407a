"""Group commit: webhooks that arrive together share one transaction.

A commit is the expensive part of taking a webhook (on SQLite, transactions also run
one at a time), so requests do not each open their own: they join a queue, one task
stores everything queued in one transaction, and each request is answered only after
the commit that holds its events. While one batch commits, the next one gathers, so
batches grow with load and an idle gateway still stores a lone webhook at once.

If a batch fails, its deliveries are stored again one by one, each in its own
transaction: one poisoned delivery (a plugin's ``apply`` raising, say) fails alone, and
when the database itself is down every sender gets its own 5xx. Nothing is answered
2xx unless it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from tortoise.exceptions import IntegrityError

from gateway.db_errors import classify
from gateway.errors import ServiceUnavailable
from gateway.webhooks.store import Delivery, Stored

log = logging.getLogger("gateway.webhooks")

StoreBatch = Callable[[list[Delivery]], Awaitable[list[Stored]]]
# Bounded so one transaction stays short and its SQL within parameter limits.
MAX_BATCH = 128


class CommitObserver(Protocol):
    """Told about each commit and split (the /metrics counters)."""

    def committed_batch(self, deliveries: int) -> None: ...

    def split(self) -> None: ...


class GroupCommit:
    def __init__(
        self, store: StoreBatch, max_batch: int = MAX_BATCH, observer: CommitObserver | None = None
    ) -> None:
        self._store = store
        self._observer = observer
        self._max = max_batch
        self._queue: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        self._task: asyncio.Task[None] | None = None
        # Shown at /api/webhooks/stats: how much sharing the commits actually get.
        self.counters = {"transactions": 0, "deliveries": 0, "largest": 0, "split": 0}

    async def submit(self, delivery: Delivery) -> Stored:
        """Store ``delivery``; returns once it is committed, raises if it could not be.

        A cancelled caller (the sender hung up) does not cancel the store: its events
        are committed anyway and its redelivery will be recognised as a duplicate.
        """
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max]
                del self._queue[: self._max]
                await self._commit(batch)
        finally:
            # Only reached with items left if this task was cancelled (shutdown).
            for _, future in self._queue:
                _settle(future, exc=_stopped())
            self._queue.clear()

    async def _commit(self, batch: list[tuple[Delivery, asyncio.Future[Stored]]]) -> None:
        try:
            await self._commit_batch(batch)
        except BaseException:
            # Cancelled (the process is stopping) before every delivery was settled:
            # nothing more will be committed, so the rest are told to retry rather than
            # left without an answer. Settled ones keep their answer.
            for _, future in batch:
                _settle(future, exc=_stopped())
            raise

    async def _commit_batch(self, batch: list[tuple[Delivery, asyncio.Future[Stored]]]) -> None:
        try:
            results = await self._store([d for d, _ in batch])
        except Exception as exc:
            # One delivery, or a database that cannot be reached: storing them one by
            # one cannot help (and would only multiply the attempts and the log lines).
            if (len(batch) == 1 and not isinstance(exc, IntegrityError)) or classify(
                exc
            ) == "unavailable":
                for _, future in batch:
                    _settle(future, exc=exc)
                return
            # The type only: a database's message may quote the row, i.e. payload data.
            log.info(
                "webhook batch of %d failed (%s); storing one by one",
                len(batch),
                type(exc).__name__,
            )
            self.counters["split"] += 1
            if self._observer is not None:
                self._observer.split()
            for delivery, future in batch:
                await self._commit_alone(delivery, future)
        else:
            self._counted(len(batch))
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _commit_alone(self, delivery: Delivery, future: asyncio.Future[Stored]) -> None:
        for attempt in range(3):
            try:
                _settle(future, (await self._store([delivery]))[0])
                self._counted(1)
                return
            except IntegrityError as exc:
                # Another process stored an overlapping row first; the retry sees it.
                if attempt == 2:
                    _settle(future, exc=exc)
            except Exception as exc:
                _settle(future, exc=exc)
                return

    def _counted(self, deliveries: int) -> None:
        c = self.counters
        c["transactions"] += 1
        c["deliveries"] += deliveries
        c["largest"] = max(c["largest"], deliveries)
        if self._observer is not None:
            self._observer.committed_batch(deliveries)


def _stopped() -> ServiceUnavailable:
    return ServiceUnavailable("The gateway is stopping; retry later")


def _settle(
    future: asyncio.Future[Stored], result: Stored | None = None, exc: BaseException | None = None
) -> None:
    if future.done():  # the caller went away; what was stored stays stored
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
