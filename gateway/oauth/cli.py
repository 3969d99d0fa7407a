"""``gateway`` subcommands for oauth."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands (none yet)."""
