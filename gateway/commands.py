"""What a plugin's commands (``register_commands``) use: the app they run against and
the one way a command prints a JSON document.

A command builds its own app (``create_app(config)``) like ``gateway worker`` does, starts
it for its database and HTTP session, and prints its figures with :func:`print_json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["create_app", "print_json"]


def print_json(data: Any) -> None:
    """A JSON document on stdout: indented for people, one line in JSON log mode."""
    from gateway.logs import JsonLines

    # Asked of the stream, not of a flag: the CLI swaps stdout for JsonLines in JSON mode.
    if isinstance(sys.stdout, JsonLines):
        print(json.dumps(data, default=str))
    else:
        print(json.dumps(data, indent=2, default=str))


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`gateway.app.create_app`, imported when a command runs (so listing the
    commands stays cheap)."""
    from gateway.app import create_app as build

    return build(*args, **kwargs)
