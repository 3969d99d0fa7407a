from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Note(Model):
    id = fields.IntField(primary_key=True)
    team = fields.ForeignKeyField("identity.Team", related_name="notes")
    text = fields.CharField(max_length=200)

    class Meta:
        table = "test_notes"
