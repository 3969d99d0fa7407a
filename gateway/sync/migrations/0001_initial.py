from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('identity', '0001_initial'), ('identity', '0002_user_session_version')]

    initial = True

    operations = [
        ops.CreateModel(
            name='Effect',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='sync_effects', on_delete=OnDelete.SET_NULL)),
                ('subject', fields.CharField(max_length=128)),
                ('plugin', fields.CharField(max_length=64)),
                ('action', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('marker', fields.CharField(max_length=64)),
                ('sent', fields.BooleanField(default=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('provider_id', fields.CharField(null=True, max_length=255)),
                ('url', fields.CharField(null=True, max_length=2000)),
                ('detail', fields.CharField(null=True, max_length=500)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attempts', fields.IntField(default=0)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('owner', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sync_effects', 'app': 'sync', 'unique_together': (('subject', 'plugin', 'action'),), 'pk_attr': 'id', 'table_description': 'One side effect at a provider, per (subject, plugin, action): a call logged in a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RateWindow',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255)),
                ('hits', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'sync_rate_windows', 'app': 'sync', 'pk_attr': 'key', 'table_description': "The recent request times of one provider account's limit (a sliding log), shared"},
            bases=['Model'],
        ),
    ]
