"""Identity operations shared by the HTTP API and the CLI, so both enforce the same
rules: unique e-mails, phone numbers and agent ids (409), and a team never left without
an owner."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.errors import Conflict, NotFound
from gateway.identity import validation as v
from gateway.identity.models import Membership, PhoneNumber, Team, User, VoiceAgent
from gateway.identity.passwords import hash_password
from gateway.responses import iso


def team_json(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "time_zone": team.time_zone,
        "recording_retention_days": team.recording_retention_days,
        "created_at": iso(team.created_at),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "is_super_admin": user.is_super_admin,
        "has_password": bool(user.password_hash),
    }


def member_json(m: Membership) -> dict[str, Any]:
    """A member as their teammates see them: who, and in which role. Not whether they
    are a super admin or have a password: that is none of a teammate's business."""
    return {
        "user": {"id": m.user.id, "email": m.user.email, "name": m.user.name},
        "role": m.role,
        "joined_at": iso(m.created_at),
    }


async def create_user(
    email: str, password: str | None = None, name: str = "", is_super_admin: bool = False
) -> User:
    address = v.email(email)
    password_hash = hash_password(password) if password else None
    try:
        return await User.create(
            email=address, name=name, password_hash=password_hash, is_super_admin=is_super_admin
        )
    except IntegrityError:
        raise Conflict("A user with this email already exists", extra={"field": "email"}) from None


async def set_password(user: User, password: str) -> None:
    """New password; every existing browser session of the user ends."""
    user.password_hash = hash_password(password)
    user.session_version += 1
    await user.save(update_fields=["password_hash", "session_version"])


async def create_team(
    name: str, owner: User | None, time_zone: str = "UTC", retention_days: int = 90
) -> Team:
    async with in_transaction() as conn:
        team = await Team.create(
            name=name,
            time_zone=time_zone,
            recording_retention_days=retention_days,
            using_db=conn,
        )
        if owner is not None:
            await Membership.create(team=team, user=owner, role="owner", using_db=conn)
    return team


async def add_member(team: Team, user: User, role: str) -> Membership:
    try:
        return await Membership.create(team=team, user=user, role=role)
    except IntegrityError:
        raise Conflict("User is already a member of this team", extra={"field": "user"}) from None


async def change_member(team: Team, user_id: int, role: str | None) -> Membership | None:
    """Set a member's role (``role``) or remove them (``None``).

    The team row is locked (PostgreSQL) so two owners demoting each other at once cannot
    both succeed and leave the team ownerless.
    """
    async with in_transaction() as conn:
        await Team.filter(id=team.id).select_for_update().using_db(conn).first()
        membership = (
            await Membership.filter(team_id=team.id, user_id=user_id)
            .using_db(conn)
            .select_related("user")
            .first()
        )
        if membership is None:
            raise NotFound("Member not found")
        if membership.role == "owner" and role != "owner":
            owners = await Membership.filter(team_id=team.id, role="owner").using_db(conn).count()
            if owners <= 1:
                raise Conflict("A team must keep at least one owner", extra={"field": "role"})
        if role is None:
            await Membership.filter(id=membership.id).using_db(conn).delete()
            return None
        membership.role = role
        await membership.save(update_fields=["role"], using_db=conn)
        return membership


async def add_phone_number(team: Team, number: str) -> PhoneNumber:
    try:
        return await PhoneNumber.create(team=team, number=number)
    except IntegrityError:
        # Same message whoever owns it: do not reveal other teams' numbers more than needed.
        raise Conflict("Phone number is already registered", extra={"field": "number"}) from None


async def add_voice_agent(team: Team, agent_id: str, label: str = "") -> VoiceAgent:
    try:
        return await VoiceAgent.create(team=team, agent_id=agent_id, label=label)
    except IntegrityError:
        raise Conflict("Agent id is already registered", extra={"field": "agent_id"}) from None
