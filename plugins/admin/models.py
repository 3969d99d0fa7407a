"""Admin plugin models (Tortoise app ``admin``)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

SETUP_SLOT = "super_admin"


class SetupRecord(Model):
    """The record of the one-time super-admin setup.

    Only one row can ever exist: ``slot`` is unique and always the same value. The setup
    endpoint inserts it in the same transaction as the new user, so when requests race
    the database itself lets exactly one insert commit and every other one fail.
    ``user_id`` is a plain integer, not a foreign key, so deleting that user later does
    not reopen the setup.
    """

    id = fields.IntField(primary_key=True)
    slot = fields.CharField(max_length=32, unique=True, default=SETUP_SLOT)
    user_id = fields.IntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "admin_setup"
