"""The console (``[plugins.console]``): server-rendered pages under ``/console`` where a
team admin signs in, connects providers, follows every call end to end, retries jobs and
edits the team's settings; super admins see the operators' page.

A plugin like any other: every page is built from the JSON API (called in-process with
the visitor's own session, so the API's permissions are the console's) and the public
plugin modules. Usable without JavaScript; ``static/console.js`` only adds comfort.
See docs/console.md.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl

NAME = "console"


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from plugins.console import pages  # noqa: F401  (registers the routes)
    from plugins.console.blueprint import bp

    return [bp]
