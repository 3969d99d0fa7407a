"""``[plugins.cron]`` settings, and the per-team settings of the reports
(``/api/teams/<id>/settings/cron``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from gateway.config import PluginSettings

# A data-collection item id: it is passed to SQL as a JSON path parameter, so it is
# kept to plain identifier characters.
ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class CronSettings(PluginSettings):
    # Recordings read, deleted and marked per batch: memory stays flat however many
    # expired at once.
    cleanup_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Deletes in flight at once (a remote store benefits; local disk does not mind).
    cleanup_concurrency: int = Field(default=8, ge=1, le=64)
    # The voice agent's data-collection items that say "a meeting was booked": a call
    # counts as one meeting when any of them holds true / "true" / "yes" / 1.
    meeting_items: list[ItemId] = Field(default_factory=lambda: ["meeting_booked"], max_length=10)
    # How many outcomes the reports list (most frequent first).
    top_outcomes: int = Field(default=3, ge=1, le=10)


class CronTeamSettings(BaseModel):
    """What a team's admins choose about the report mails."""

    daily_summary_mail: bool = Field(
        default=True, description="mail the daily summary to the team's owners and admins"
    )
    weekly_report_mail: bool = Field(
        default=True, description="mail the weekly report to the team's owners and admins"
    )
    mail_without_calls: bool = Field(
        default=False, description="send the mails even for a period without calls"
    )
