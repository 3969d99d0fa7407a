"""What the ingestion engine checks about a verified delivery before storing it, and how
a failure is answered.

A signed delivery can still carry values the database cannot hold (a NUL, a lone
surrogate, a routing key longer than its column). Storing it would fail on every retry,
so it is a ``400`` (the sender stops retrying) and nothing is stored. Only a failure of
ours, the database being unreachable or erroring, is a ``503`` that asks for a retry.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway import inputs
from gateway.db_errors import OutageLog, classify
from gateway.errors import DatabaseUnavailable, GatewayError, ValidationError
from gateway.webhooks.models import WebhookEvent
from gateway.webhooks.source import ParsedEvent

log = logging.getLogger("gateway.webhooks")

OUTAGE_KEY = "gateway_webhook_outage"
# ParsedEvent fields stored in WebhookEvent columns of the same name.
_COLUMNS = ("type", "phone_number", "agent_id")


def check_events(events: list[ParsedEvent]) -> None:
    """:raises ValidationError: an event the database would refuse (a routing key or
    type longer than its column; a NUL or lone surrogate anywhere in it)."""
    for event in events:
        for name in _COLUMNS:
            value = getattr(event, name)
            if value is not None:
                inputs.check_text(str(value), name, inputs.max_length(WebhookEvent, name))
        inputs.check_strings([event.dedup_key, event.payload], "payload")


def outage_log(app: Any) -> OutageLog:
    outage = app.extensions.get(OUTAGE_KEY)
    if outage is None:
        outage = app.extensions[OUTAGE_KEY] = OutageLog(log, "webhooks: database")
    return outage


def failure_answer(app: Any, source_name: str, exc: Exception) -> tuple[str, GatewayError] | None:
    """``(outcome, error to raise)`` for a failure while verifying, parsing or storing
    a delivery; None when it is not a database failure (the app's handler answers).

    A value the database refused is the delivery's fault: ``invalid``, 400. Anything
    else from the database, unreachable or not, is ours: ``failed``, 503, so the
    sender retries and nothing is lost.
    """
    kind = classify(exc)
    if kind is None:
        return None
    if kind == "input":
        log.warning(
            "webhook %s: a value does not fit (%s); answering 400",
            source_name,
            type(exc).__name__,
        )
        return "invalid", ValidationError("A value in the request is out of range or too long")
    if kind == "unavailable":
        outage_log(app).failed(exc)
    else:
        # The type only: a database's message may quote the row, i.e. payload data.
        log.error("webhook %s: not stored (%s); answering 503", source_name, type(exc).__name__)
    return "failed", DatabaseUnavailable("Could not store the event; retry later")
