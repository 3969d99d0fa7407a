"""Inbound webhooks: the provider-agnostic ingestion path.

Plugins describe sources (:class:`WebhookSource`); the core mounts them under
``/api/webhooks/``, checks size and signature, parses, stores the events with dedup and
their jobs in one transaction, and only then answers.
"""

from __future__ import annotations

from gateway.contract.route import WebhookContract
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest, WebhookSource

__all__ = ["ApplyContext", "ParsedEvent", "WebhookContract", "WebhookRequest", "WebhookSource"]
