"""``[plugins.cron]`` settings."""

from __future__ import annotations

from pydantic import Field

from gateway.config import PluginSettings


class CronSettings(PluginSettings):
    # Recordings read, deleted and marked per batch: memory stays flat however many
    # expired at once.
    cleanup_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Deletes in flight at once (a remote store benefits; local disk does not mind).
    cleanup_concurrency: int = Field(default=8, ge=1, le=64)
