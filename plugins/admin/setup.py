"""The one-time super-admin setup: who may call it, and the transaction that makes
"exactly one caller wins" a property of the database rather than of this process."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from quart import Request
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.auth import bearer_token, create_api_token
from gateway.clock import Clock
from gateway.errors import Conflict
from gateway.identity import User, create_user, user_json
from plugins.admin.models import SETUP_SLOT, SetupRecord

log = logging.getLogger("gateway.plugins.admin")

ALREADY_DONE = "Setup is already complete: a super admin exists"


def presented_token(request: Request) -> str | None:
    """The setup token from ``X-Setup-Token`` or ``Authorization: Bearer``."""
    header = request.headers.get("X-Setup-Token")
    if header:
        return header.strip()
    return bearer_token(request)


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison. Both sides are hashed first so the comparison also
    takes the same time whatever the presented token's length."""
    if not presented or not expected:
        return False
    a = hashlib.sha256(presented.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b)


async def setup_done() -> bool:
    """True once the setup ran or a super admin was made another way (the CLI)."""
    if await SetupRecord.exists():
        return True
    return await User.filter(is_super_admin=True).exists()


async def create_super_admin(
    clock: Clock, email: str, name: str, password: str | None
) -> tuple[dict[str, Any], str]:
    """Create the super admin and its first API token, or raise ``Conflict``.

    The setup row is inserted first: its unique slot makes every concurrent transaction
    wait on (PostgreSQL) or queue behind (SQLite) the first one, and fail once it commits.
    Anything failing later (a bad password, a taken e-mail) rolls the row back with the
    user, so a failed attempt does not close the setup.
    """
    try:
        async with in_transaction() as conn:
            await SetupRecord.create(
                slot=SETUP_SLOT, user_id=0, created_at=clock.now(), using_db=conn
            )
            if await User.filter(is_super_admin=True).using_db(conn).exists():
                raise Conflict(ALREADY_DONE)
            # The service functions run on this transaction: Tortoise routes queries of
            # this task to the open transaction's connection.
            user = await create_user(email, password=password, name=name, is_super_admin=True)
            await SetupRecord.filter(slot=SETUP_SLOT).using_db(conn).update(user_id=user.id)
            token, _row = await create_api_token(user, label="setup")
    except IntegrityError:
        raise Conflict(ALREADY_DONE) from None
    log.warning(
        "super admin created by setup (user id %s); the setup endpoint is now closed", user.id
    )
    return user_json(user), token
