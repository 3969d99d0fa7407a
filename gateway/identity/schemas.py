"""Request and response models of the identity routes (auth, account, teams, routing,
invitations), for the API contract (gateway.contract). The views still check values
with :mod:`gateway.identity.validation`; these models say the shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.identity.models import ROLES
from gateway.identity.validation import AGENT_ID, E164, EMAIL

# Formats the views check with their own messages (gateway.identity.validation): the
# models only show them in the document, so both say the same and the wording stays.
EMAIL_SCHEMA: dict[str, Any] = {"pattern": EMAIL.pattern, "maxLength": 320}
ROLE_SCHEMA: dict[str, Any] = {"enum": list(ROLES)}


class UserOut(BaseModel):
    id: int
    email: str
    name: str | None = None
    is_super_admin: bool | None = None
    has_password: bool | None = None


class UserRef(BaseModel):
    id: int
    email: str | None = None
    name: str | None = None


class TeamOut(BaseModel):
    id: int
    name: str
    time_zone: str
    recording_retention_days: int
    created_at: str | None


class TeamRole(BaseModel):
    id: int
    name: str
    role: str | None


class LoginIn(BaseModel):
    email: str = Field(json_schema_extra=EMAIL_SCHEMA)
    password: str


class UserAnswer(BaseModel):
    user: UserOut


class MeOut(BaseModel):
    user: UserOut
    via: str
    teams: list[TeamRole]


class TokenIn(BaseModel):
    label: str | None = None
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    prefix: str
    label: str | None
    created_at: str | None
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


class TokenCreated(BaseModel):
    """The token itself is shown here only."""

    token: str
    api_token: TokenOut


class TokenList(BaseModel):
    tokens: list[TokenOut]


class PasswordIn(BaseModel):
    new_password: str
    current_password: str | None = None


class TeamIn(BaseModel):
    name: str
    time_zone: str = "UTC"
    recording_retention_days: int = Field(90, ge=1, le=3650)
    owner_email: str | None = Field(
        None, description="super admins only: another owner", json_schema_extra=EMAIL_SCHEMA
    )


class TeamPatch(BaseModel):
    name: str | None = None
    time_zone: str | None = None
    recording_retention_days: int | None = Field(None, ge=1, le=3650)


class TeamAnswer(BaseModel):
    team: TeamOut
    role: str | None = None


class MemberOut(BaseModel):
    user: UserRef
    role: str
    joined_at: str | None


class MemberList(BaseModel):
    members: list[MemberOut]


class RoleIn(BaseModel):
    role: str = Field(json_schema_extra=ROLE_SCHEMA)


class MemberAnswer(BaseModel):
    member: MemberOut


class NumberIn(BaseModel):
    number: str = Field(
        description="E.164, e.g. +14155550100", json_schema_extra={"pattern": E164.pattern}
    )


class NumberOut(BaseModel):
    id: int
    number: str


class NumberAnswer(BaseModel):
    phone_number: NumberOut


class NumberList(BaseModel):
    phone_numbers: list[NumberOut]


class AgentIn(BaseModel):
    agent_id: str = Field(json_schema_extra={"pattern": AGENT_ID.pattern})
    label: str | None = None


class AgentOut(BaseModel):
    id: int
    agent_id: str
    label: str | None


class AgentAnswer(BaseModel):
    agent: AgentOut


class AgentList(BaseModel):
    agents: list[AgentOut]


class InviteIn(BaseModel):
    email: str = Field(json_schema_extra=EMAIL_SCHEMA)
    role: str = Field("member", json_schema_extra=ROLE_SCHEMA)


class InviterOut(BaseModel):
    id: int
    email: str


class InvitationOut(BaseModel):
    id: int
    email: str
    role: str
    invited_by: InviterOut | None
    created_at: str | None
    expires_at: str | None


class InvitationCreatedOut(InvitationOut):
    token: str
    accept_url: str


class InvitationCreated(BaseModel):
    """The one-time link is shown here only."""

    invitation: InvitationCreatedOut


class InvitationList(BaseModel):
    invitations: list[InvitationOut]


class TeamRef(BaseModel):
    id: int
    name: str


class InvitationShownOut(InvitationOut):
    team: TeamRef


class InvitationShown(BaseModel):
    invitation: InvitationShownOut


class AcceptIn(BaseModel):
    """Empty when signed in as the invited address; else the new account's password."""

    password: str | None = None
    name: str | None = None


class Accepted(BaseModel):
    team: TeamOut
    role: str
    user: UserRef
