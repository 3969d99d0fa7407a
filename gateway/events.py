"""Event handlers: what plugins run, as durable jobs, for stored events."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class RetryLater(Exception):
    """Raise from a handler to be retried after ``seconds`` (e.g. a 429's Retry-After)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {seconds}s")
        self.seconds = seconds


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help: the job is dead-lettered now."""


@dataclass
class JobContext:
    """What a handler receives.

    :param event: the stored event row (``.type``, ``.payload``, ``.team_id``, ...).
    :param job: the job row (``.attempts`` counts this try).
    :param app: the Quart app (``app.extensions``).
    :param config: the gateway configuration.
    :param http: the shared aiohttp session.
    :param clock: the gateway clock.
    """

    event: Any
    job: Any
    app: Any
    config: Any
    http: Any
    clock: Any


@dataclass(frozen=True)
class EventHandler:
    """:param name: unique, e.g. ``"acme_voice.download_recording"``.
    :param event_types: exact types or shell-style patterns (``"voice.call.*"``).
    :param handler: ``async (JobContext) -> None``; raise to retry with backoff.
    :param max_attempts: overrides the gateway default.
    """

    name: str
    event_types: tuple[str, ...]
    handler: Callable[[JobContext], Awaitable[None]]
    max_attempts: int | None = None

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.event_types)
