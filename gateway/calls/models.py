"""calls models (Tortoise app ``calls``)."""

from __future__ import annotations
