"""The caller lookup through the registered CRMs (the core's ``lookup_contact``).

For the personalization hot path, :func:`gateway.contacts.lookup_contact` calls the
``lookup_contact`` hook under its deadline and cancels what is still running when the
deadline passes. The core's implementation (in :mod:`gateway.sync.plugin`) asks the
CRMs the team has connected, in registration order, one after another, and answers
with the first contact found:

``{"source": "<crm name>", "id": "<the CRM's id>", "name": ..., "company": ...,
"owner": ..., "last_activity": ..., ...}`` (see :meth:`Contact.as_lookup`).

It only awaits (no shielded work, no threads), so the caller's cancellation stops it at
once. A CRM that fails, has no free rate-limit slot or needs reconnecting is skipped
(logged without the number), never waited for.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.events import RetryLater
from gateway.oauth.models import OAuthConnection
from gateway.sync.contract import CRM

log = logging.getLogger("gateway.sync")


def crms_of(app: Any) -> dict[str, CRM]:
    return app.extensions["gateway"].registry("register_crms")


async def lookup(app: Any, team_id: int, phone: str) -> dict[str, Any] | None:
    """The first contact for ``phone`` (E.164) among the team's connected CRMs."""
    from gateway.sync.engine import request_for

    crms = [crm for crm in crms_of(app).values() if crm.lookup]
    if not crms:
        return None
    connections = {
        c.provider: c
        for c in await OAuthConnection.filter(
            team_id=team_id, provider__in=[crm.provider for crm in crms], status="connected"
        )
    }
    for crm in crms:
        connection = connections.get(crm.provider)
        if connection is None:
            continue
        try:
            contact = await crm.find_contact(request_for(app, crm, team_id, connection), phone)
        except RetryLater:
            log.info("contact lookup in %s skipped: no rate-limit slot free", crm.name)
            continue
        except Exception as exc:  # one CRM failing must not fail the call
            log.warning("contact lookup in %s failed: %s", crm.name, type(exc).__name__)
            continue
        if contact is not None:
            return contact.as_lookup(crm.name)
    return None
