"""Moved to :mod:`gateway.testing.loopback` (shipped for plugin authors)."""

from gateway.testing.loopback import serve

__all__ = ["serve"]
