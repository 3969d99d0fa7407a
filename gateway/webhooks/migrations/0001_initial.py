from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True
    dependencies = [("identity", "0001_initial")]

    operations = [
        ops.CreateModel(
            name='WebhookEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('source', fields.CharField(max_length=100)),
                ('dedup_key', fields.CharField(max_length=255)),
                ('type', fields.CharField(db_index=True, max_length=100)),
                ('status', fields.CharField(default='routed', db_index=True, max_length=16)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='webhook_events', on_delete=OnDelete.SET_NULL)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('phone_number', fields.CharField(null=True, max_length=32)),
                ('agent_id', fields.CharField(null=True, max_length=128)),
                ('occurred_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_events', 'app': 'webhooks', 'unique_together': (('source', 'dedup_key'),), 'pk_attr': 'id', 'table_description': 'One event parsed out of a verified webhook request. Unrouted events keep team null.'},
            bases=['Model'],
        ),
    ]
