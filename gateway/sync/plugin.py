"""Core plugin of the sync engine: the caller lookup through the team's CRMs, the
effects API for the call timeline, and closing the provider rate limiter.

The ``<crm>.log_call`` event handlers are derived from the ``register_crms`` registry
when the app is created (:func:`add_crm_handlers`), so a CRM plugin registers nothing
but its :class:`~gateway.sync.CRM`.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app

from gateway import hookimpl
from gateway.errors import StartupError


@hookimpl(trylast=True)
async def lookup_contact(team: Any, phone: str, config: Any) -> dict[str, Any] | None:
    """Asks the team's connected CRMs (see :mod:`gateway.sync.lookup`). ``trylast``: a
    plugin's own ``lookup_contact`` (a directory, a cache) is asked first. Runs in the
    caller's app context (a request, or a job: the worker pushes one)."""
    from gateway.sync.lookup import lookup

    if team is None or not phone:
        return None
    team_id = int(getattr(team, "id", team))
    return await lookup(current_app._get_current_object(), team_id, phone)  # type: ignore[attr-defined]


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.sync.api import bp

    return [bp]


@hookimpl
async def shutdown(app: Any, config: Any) -> None:
    from gateway.sync import limiter

    await limiter.close(app)


def add_crm_handlers(gw: Any) -> None:
    """Add one ``<crm>.log_call`` handler per registered CRM to the event handlers.

    :raises StartupError: a handler of that name is already registered.
    """
    from gateway.sync.engine import handlers_for

    crms = gw.registry("register_crms")
    handlers = gw.registries["register_event_handlers"]
    for handler in handlers_for(crms):
        if handler.name in handlers:
            owner = handlers[handler.name][0]
            raise StartupError(
                f"CRM '{handler.name.rsplit('.', 1)[0]}': event handler '{handler.name}' "
                f"is already registered by plugin '{owner}'"
            )
        crm_plugin = gw.registries["register_crms"][handler.name.rsplit(".", 1)[0]][0]
        handlers[handler.name] = (crm_plugin, handler)
    gw._items.pop("register_event_handlers", None)
