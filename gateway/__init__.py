"""Renchi Gateway core.

Plugins write ``from gateway import hookimpl``; everything else is imported from its
own module so that importing this package stays cheap.
"""

from __future__ import annotations

from hookspecs import hookimpl

__all__ = ["hookimpl"]
