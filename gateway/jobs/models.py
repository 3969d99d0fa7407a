"""jobs models (Tortoise app ``jobs``)."""

from __future__ import annotations
