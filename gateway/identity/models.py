"""Identity models (Tortoise app ``identity``)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

ROLES = ("owner", "admin", "member")


class Team(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    time_zone = fields.CharField(max_length=64, default="UTC")
    recording_retention_days = fields.IntField(default=90)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "teams"


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)
    name = fields.CharField(max_length=200, default="")
    password_hash = fields.CharField(max_length=255, null=True)
    is_super_admin = fields.BooleanField(default=False)
    is_active = fields.BooleanField(default=True)
    # Signed into every session cookie: bumping it (logout, password change) ends all of
    # the user's browser sessions at once, without a server-side session table.
    session_version = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class Membership(Model):
    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="memberships", on_delete=fields.CASCADE
    )
    team_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name="memberships", on_delete=fields.CASCADE
    )
    user_id: int
    role = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "memberships"
        unique_together = (("team", "user"),)


class ApiToken(Model):
    """An API token. Only a SHA-256 of the token is stored. The prefix helps humans
    tell tokens apart in listings."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    prefix = fields.CharField(max_length=16, db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    label = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"


class Invitation(Model):
    """An invitation to join a team (gateway.identity.invitations). Only a SHA-256 of
    its token is kept; single use (``accepted_at``), expiring."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="invitations", on_delete=fields.CASCADE
    )
    team_id: int
    email = fields.CharField(max_length=320, db_index=True)
    role = fields.CharField(max_length=16)
    token_hash = fields.CharField(max_length=64, unique=True)
    invited_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name="invitations_sent", null=True, on_delete=fields.SET_NULL
    )
    invited_by_id: int | None
    accepted_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "identity.User",
        related_name="invitations_accepted",
        null=True,
        on_delete=fields.SET_NULL,
    )
    accepted_by_id: int | None
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "invitations"


class PhoneNumber(Model):
    """A phone number (E.164) a team answers. Routes inbound calls to the team."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="phone_numbers", on_delete=fields.CASCADE
    )
    team_id: int
    number = fields.CharField(max_length=20, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "phone_numbers"


class VoiceAgent(Model):
    """A voice-agent id (at the agent provider) that belongs to a team."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="voice_agents", on_delete=fields.CASCADE
    )
    team_id: int
    agent_id = fields.CharField(max_length=128, unique=True)
    label = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "voice_agents"
