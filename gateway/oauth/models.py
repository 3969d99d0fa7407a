"""OAuth models (Tortoise app ``oauth``): pending authorization states and one stored
connection per team and provider. Every time column is written from ``gw.clock``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team, User

STATUSES = ("connected", "needs_reconnect", "error")


class OAuthState(Model):
    """A pending authorization. Only a SHA-256 of the state value is kept, so a read of
    the table cannot be replayed as a callback. Deleted when the callback consumes it."""

    id = fields.IntField(primary_key=True)
    state_hash = fields.CharField(max_length=64, unique=True)
    # SHA-256 of the nonce in the starting browser's cookie (gateway.oauth.binding).
    browser_hash = fields.CharField(max_length=64, null=True)
    provider = fields.CharField(max_length=64)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="oauth_states", on_delete=fields.CASCADE
    )
    team_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name="oauth_states", on_delete=fields.CASCADE
    )
    user_id: int
    # The PKCE verifier, encrypted like the tokens: it is half of a code exchange.
    code_verifier_enc = fields.TextField(null=True)
    return_to = fields.CharField(max_length=2000, null=True)
    options: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "oauth_states"


class OAuthConnection(Model):
    """A team's connection to a provider. Tokens are Fernet ciphertexts (gateway.crypto)."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="oauth_connections", on_delete=fields.CASCADE
    )
    team_id: int
    provider = fields.CharField(max_length=64)
    status = fields.CharField(max_length=32, default="connected")
    account_id = fields.CharField(max_length=255, default="")
    account_label = fields.CharField(max_length=320, default="")
    account_data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    options: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    scopes = fields.TextField(default="")
    token_type = fields.CharField(max_length=32, default="Bearer")
    access_token_enc = fields.TextField(null=True)
    refresh_token_enc = fields.TextField(null=True)
    expires_at = fields.DatetimeField(null=True)
    connected_at = fields.DatetimeField()
    connected_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name="oauth_connections", null=True, on_delete=fields.SET_NULL
    )
    connected_by_id: int | None
    refreshed_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "oauth_connections"
        unique_together = (("team", "provider"),)
