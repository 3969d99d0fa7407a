"""Recording rows from recording-status callbacks, and their retention.

A recording's own status says what the gateway did with it: ``in_progress`` (the
provider is still recording), ``pending`` (ready, the download job will fetch it),
``stored``, ``failed`` (e.g. gone at the provider), ``refused`` (the media URL was not
one we may fetch), ``expired`` (deleted after the team's retention period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.calls.models import Call, Recording

# Provider-side states in the order they can happen; a late "in-progress" never undoes
# "completed".
_PROVIDER_RANKS = {"in-progress": 1, "completed": 2, "absent": 2, "failed": 2}
FINAL = frozenset({"stored", "failed", "refused", "expired"})


@dataclass
class RecordingUpdate:
    external_id: str
    provider_status: str
    call_external_id: str | None = None
    account_id: str | None = None
    source_url: str | None = None
    duration_seconds: int | None = None
    channels: int | None = None
    error: str | None = None  # the provider's reason when it has no file
    team_id: int | None = None


def _local_status(provider_status: str) -> str:
    if provider_status == "completed":
        return "pending"
    if provider_status in {"absent", "failed"}:
        return "failed"
    return "in_progress"


async def upsert_recording(update: RecordingUpdate, *, using_db: Any) -> Recording:
    """Create or advance the recording row inside the caller's transaction, linked to
    its call (and the call's team) when the call is known."""
    query = Recording.filter(external_id=update.external_id).using_db(using_db)
    rec = await query.select_for_update().first()
    if rec is None:
        fresh = Recording(
            external_id=update.external_id,
            provider_status=None,
            status="in_progress",
        )
        await Recording.bulk_create([fresh], ignore_conflicts=True, using_db=using_db)
        rec = await query.select_for_update().first()
        if rec is None:  # pragma: no cover - exists after insert or conflict
            raise RuntimeError("recording row vanished inside its transaction")
    changes: dict[str, Any] = {}
    new_rank = _PROVIDER_RANKS.get(update.provider_status, 0)
    cur_rank = _PROVIDER_RANKS.get(rec.provider_status or "", 0)
    if new_rank > cur_rank and rec.status not in FINAL:
        changes["provider_status"] = update.provider_status
        changes["status"] = _local_status(update.provider_status)
        if update.source_url:
            changes["source_url"] = update.source_url
        if update.error and changes["status"] == "failed":
            changes["error"] = update.error[:64]
    for name in ("account_id", "duration_seconds", "channels", "call_external_id", "team_id"):
        value = getattr(update, name)
        if value is not None and getattr(rec, name) is None:
            changes[name] = value
    if rec.call_id is None and update.call_external_id:
        call = await Call.filter(external_id=update.call_external_id).using_db(using_db).first()
        if call is not None:
            changes["call_id"] = call.id
            if call.team_id is not None and changes.get("team_id", rec.team_id) is None:
                changes["team_id"] = call.team_id
    if changes:
        for name, value in changes.items():
            setattr(rec, name, value)
        await rec.save(update_fields=[*changes, "updated_at"], using_db=using_db)
    return rec


def expiry(now: datetime, retention_days: int | None) -> datetime | None:
    """When a recording stored ``now`` must be deleted; ``None`` keeps it (0 or unset)."""
    if not retention_days or retention_days <= 0:
        return None
    return now + timedelta(days=retention_days)
