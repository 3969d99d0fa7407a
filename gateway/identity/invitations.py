"""Invitations: how someone joins a team. A team admin invites an e-mail address; the
person behind it accepts with a one-time link, so nobody is added to a team without
consenting, and a team admin learns nothing about an existing account.

The link carries a random token (256 bits) stored only as a SHA-256, valid for
``INVITATION_TTL``, single use. Until the gateway sends e-mail itself, the link is shown
to the inviter once, in the answer that creates it, to pass on.

Accepting:
- an address that already has an account: the request must be signed in as it;
- an address without one: the request sets the new account's password (and name), and
  is signed in by the answer. That is the only way HTTP creates a user with a password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.errors import Conflict, Forbidden, NotFound, Unauthorized
from gateway.identity import validation as v
from gateway.identity.models import Invitation, Membership, Team, User
from gateway.identity.passwords import hash_password
from gateway.identity.tokens import hash_token
from gateway.responses import iso

INVITATION_TTL = timedelta(days=7)
TOKEN_PREFIX = "inv_"  # noqa: S105  (a public marker, not a secret)
GONE = "Invitation not found, already used or expired"


def invitation_json(row: Invitation, inviter: User | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "invited_by": {"id": inviter.id, "email": inviter.email} if inviter else None,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
    }


async def invite(
    team: Team, email: object, role: str, inviter_id: int | None, now: datetime
) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once). A pending invitation of the same
    address to the same team is replaced: the newest link is the one that works.

    :raises Conflict: the address is already a member (the same answer whether or not
        an account exists otherwise: the inviter learns nothing else).
    """
    address = v.email(email)
    if await Membership.filter(team_id=team.id, user__email=address).exists():
        raise Conflict("This address is already a member of the team", extra={"field": "email"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction() as conn:
        await (
            Invitation.filter(team_id=team.id, email=address, accepted_at=None)
            .using_db(conn)
            .delete()
        )
        row = await Invitation.create(
            team=team,
            email=address,
            role=role,
            token_hash=hash_token(token),
            invited_by_id=inviter_id,
            created_at=now,
            expires_at=now + INVITATION_TTL,
            using_db=conn,
        )
    return row, token


async def pending(token: str, now: datetime) -> Invitation:
    """The live invitation of ``token`` with its team.

    :raises NotFound: unknown, used or expired (one answer for all three).
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise NotFound(GONE)
    row = await Invitation.get_or_none(token_hash=hash_token(token)).select_related("team")
    if row is None or row.accepted_at is not None or row.expires_at <= now:
        raise NotFound(GONE)
    return row


@dataclass
class Accepted:
    team: Team
    role: str
    user: User
    created: bool  # a new account: the answer signs it in


async def accept(
    token: str,
    signed_in_user_id: int | None,
    body: dict[str, Any],
    now: datetime,
) -> Accepted:
    """Join the team the invitation is for.

    :raises NotFound: the token is not a live invitation.
    :raises Unauthorized: the address has an account and the request is not signed in.
    :raises Forbidden: signed in as someone else.
    :raises Conflict: the address has an account but the request tried to set a
        password instead of signing in; or already a member.
    """
    row = await pending(token, now)
    existing = await User.get_or_none(email=row.email)
    if signed_in_user_id is not None and (existing is None or signed_in_user_id != existing.id):
        raise Forbidden("Sign in as the invited address to accept this invitation")
    if existing is not None and signed_in_user_id is None:
        if "password" in body:
            raise Conflict("An account with this address exists: sign in as it, then accept")
        raise Unauthorized("Sign in as the invited address to accept this invitation")
    password_hash = None
    name = ""
    if existing is None:
        password = body.get("password")
        if not isinstance(password, str):
            raise v.invalid("password", "password is required to create the account")
        password_hash = hash_password(password)  # checks the strength, 400 otherwise
        name = v.text(body, "name", required=False)
    try:
        async with in_transaction() as conn:
            # Single use: only the request whose update claims the row goes on.
            claimed = (
                await Invitation.filter(id=row.id, accepted_at=None)
                .using_db(conn)
                .update(accepted_at=now)
            )
            if claimed != 1:
                raise NotFound(GONE)
            user = existing
            if user is None:
                user = await User.create(
                    email=row.email, name=name, password_hash=password_hash, using_db=conn
                )
            await Invitation.filter(id=row.id).using_db(conn).update(accepted_by_id=user.id)
            await Membership.create(team_id=row.team_id, user=user, role=row.role, using_db=conn)
    except IntegrityError:
        # A member already (added meanwhile), or the account was created meanwhile: the
        # invitation stays usable for whatever the person does next.
        raise Conflict("Already a member of this team, or the account changed") from None
    return Accepted(team=row.team, role=row.role, user=user, created=existing is None)
