"""Moved to :mod:`gateway.testing.calls` (shipped for plugin authors)."""

from gateway.testing.calls import AGENT_NUMBER, CALLER, SECRET_WORDS, T0, analyzed_call

__all__ = ["AGENT_NUMBER", "CALLER", "SECRET_WORDS", "T0", "analyzed_call"]
