"""Caller lookup for the personalization hot path: ask every ``lookup_contact``
implementation, in pluggy's call order, within one deadline; the first answer wins and
the later implementations are not run (see :mod:`gateway.dispatch`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quart import Quart

from gateway.dispatch import await_me_maybe, discard, pending_calls

log = logging.getLogger("gateway.contacts")

DEFAULT_DEADLINE_S = 0.8


async def lookup_contact(
    app: Quart, team: Any, phone: str, deadline: float = DEFAULT_DEADLINE_S
) -> dict[str, Any] | None:
    """The first non-``None`` contact for ``phone``, or ``None``.

    The deadline covers all implementations together: a slow CRM is skipped (and logged)
    rather than holding up the call.
    """
    gw = app.extensions["gateway"]
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    pending = pending_calls(gw.pm, "lookup_contact", team=team, phone=phone, config=gw.config)
    for index, (plugin, call) in enumerate(pending):
        remaining = ends_at - loop.time()
        if remaining <= 0:
            log.warning("contact lookup deadline reached before plugin '%s'", plugin)
            discard(pending[index:])
            break
        try:
            result = await asyncio.wait_for(await_me_maybe(call), remaining)
        except TimeoutError:
            log.warning("contact lookup by plugin '%s' missed the deadline", plugin)
            continue
        except Exception:  # one CRM failing must not fail the call
            log.exception("contact lookup by plugin '%s' failed", plugin)
            continue
        if result is not None:
            discard(pending[index + 1 :])
            return dict(result)
    return None
