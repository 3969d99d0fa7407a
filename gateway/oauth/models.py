"""oauth models (Tortoise app ``oauth``)."""

from __future__ import annotations
