"""webhooks models (Tortoise app ``webhooks``)."""

from __future__ import annotations
