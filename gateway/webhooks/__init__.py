"""Inbound webhooks: the provider-agnostic ingestion path.

Plugins describe sources (:class:`WebhookSource`); the core mounts them under
``/api/webhooks/``, checks size and signature, parses, stores the events with dedup and
their jobs in one transaction, and only then answers.
"""

from __future__ import annotations

from gateway.contract.route import WebhookContract
from gateway.inputs import id_max, max_length
from gateway.jobs.worker import notify
from gateway.webhooks.jsonscan import Span, TooLarge, copy_base64, scan_json_file
from gateway.webhooks.models import WebhookEvent
from gateway.webhooks.source import (
    ApplyContext,
    ParsedEvent,
    Streaming,
    WebhookRequest,
    WebhookSource,
)
from gateway.webhooks.store import Delivery, dedup_key, store_batch

__all__ = [
    "ApplyContext",
    "Delivery",
    "ParsedEvent",
    "Span",
    "Streaming",
    "TooLarge",
    "WebhookContract",
    "WebhookEvent",
    "WebhookRequest",
    "WebhookSource",
    "copy_base64",
    "dedup_key",
    "id_max",
    "max_length",
    "notify",
    "scan_json_file",
    "store_batch",
]
