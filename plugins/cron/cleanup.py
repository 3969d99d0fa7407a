"""``cleanup-recordings``: delete stored recordings whose retention ended.

Rows are read in expiry order, one batch at a time (``cleanup_batch_size``), so memory stays
flat for any number of expired recordings. Each batch: delete the blobs (a few at a
time), then mark the rows whose blob is gone ``expired`` in one statement. A blob that
cannot be deleted is counted and left ``stored``: the next run tries it again. Running
twice changes nothing the second time (a blob already gone counts as deleted).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.calls import Recording, VoiceRecordingExpired
from gateway.events import Emitted, emit_events, wake_workers
from gateway.scheduling import TaskContext
from gateway.storage import BlobStorage, recording_storage
from plugins.cron.figures import SqlParams
from plugins.cron.settings import CronSettings

log = logging.getLogger("plugins.cron")

TASK = "cleanup-recordings"
SCHEDULE = "0 3 * * *"  # daily 03:00 UTC
SOURCE = "cron"


_COLUMNS = (
    "id",
    "external_id",
    "call_external_id",
    "account_id",
    "team_id",
    "storage_key",
    "size_bytes",
    "expires_at",
)


async def expired_batch(now: datetime, after: tuple[Any, int] | None, size: int) -> list[Any]:
    """The next ``size`` stored recordings expired by ``now``, in ``(expires_at, id)``
    order after ``after`` (the last row of the previous batch, as read).

    Keyed on the ``expires_at`` index, so each batch reads only its own rows: ordering
    by id instead made the database read every remaining expired row per batch
    (minutes for 100,000). ``expires_at >= ?`` bounds the index range; the ``OR`` only
    skips the few rows of the same instant already seen."""
    conn = connections.get("default")
    sql = SqlParams(conn)
    where = f"status = 'stored' AND expires_at <= {sql.when(now)}"
    if after is not None:
        last, last_id = after
        where += (
            f" AND expires_at >= {sql.param(last)}"
            f" AND (expires_at > {sql.param(last)} OR id > {sql.param(last_id)})"
        )
    query = (
        f"SELECT {', '.join(_COLUMNS)} FROM {Recording._meta.db_table} "  # noqa: S608
        f"WHERE {where} ORDER BY expires_at, id LIMIT {int(size)}"
    )
    return await conn.execute_query_dict(query, sql.values)


class CleanupRecordings:
    """The task's handler, bound to the plugin's settings."""

    def __init__(self, settings: CronSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        store = recording_storage(ctx.app)
        now = ctx.clock.now()
        figures = {"expired": 0, "bytes_freed": 0, "already_gone": 0, "failed": 0, "batches": 0}
        figures["announced"] = 0
        after: tuple[Any, int] | None = None
        while True:
            batch = await expired_batch(now, after, self.settings.cleanup_batch_size)
            if not batch:
                break
            after = (batch[-1]["expires_at"], batch[-1]["id"])
            figures["batches"] += 1
            outcomes = await self._delete_all(store, batch)
            gone = [
                row for row, outcome in zip(batch, outcomes, strict=True) if outcome != "failed"
            ]
            for row, outcome in zip(batch, outcomes, strict=True):
                if outcome == "deleted":
                    figures["bytes_freed"] += row["size_bytes"] or 0
                else:
                    figures[outcome] += 1
            if gone:
                ids = [row["id"] for row in gone]
                # status="stored" again: a row changed since it was read is left alone.
                # One transaction: a row is expired if and only if its event exists.
                async with in_transaction() as conn:
                    figures["expired"] += (
                        await Recording.filter(id__in=ids, status="stored")
                        .using_db(conn)
                        .update(status="expired", updated_at=now)
                    )
                    announced = await announce_expired(ctx, gone, using_db=conn)
                figures["announced"] += sum(e.new for e in announced)
                if any(e.jobs for e in announced):
                    wake_workers(ctx.app)
        if figures["failed"]:
            log.warning(
                "%s: %d recording(s) could not be deleted; retried next run",
                TASK,
                figures["failed"],
            )
        return figures

    async def _delete_all(self, store: BlobStorage, batch: list[dict[str, Any]]) -> list[str]:
        slots = asyncio.Semaphore(self.settings.cleanup_concurrency)

        async def one(row: dict[str, Any]) -> str:
            if not row["storage_key"]:
                return "already_gone"
            async with slots:
                try:
                    existed = await store.delete(row["storage_key"])
                except Exception as exc:  # one bad file must not stop the others
                    log.warning(
                        "%s: recording %s not deleted (%s)", TASK, row["id"], type(exc).__name__
                    )
                    return "failed"
            return "deleted" if existed else "already_gone"

        return list(await asyncio.gather(*(one(row) for row in batch)))


async def announce_expired(
    ctx: TaskContext, rows: list[dict[str, Any]], using_db: Any = None
) -> list[Emitted]:
    """Emit one ``voice.recording.expired`` per recording whose gateway copy is gone,
    in one transaction for the batch: the telephony plugin that made it deletes the
    provider's copy (this plugin names no provider). The dedup key is the recording's
    id at the provider, so a rerun never asks twice."""
    payloads = [
        VoiceRecordingExpired(
            recording_id=row["id"],
            external_id=row["external_id"],
            call_external_id=row["call_external_id"],
            account_id=row["account_id"],
            team_id=row["team_id"],
        )
        for row in rows
    ]
    return await emit_events(
        ctx.app,
        source=SOURCE,
        payloads=payloads,
        team_ids=[row["team_id"] for row in rows],
        using_db=using_db,
    )
