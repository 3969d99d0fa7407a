from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True
    dependencies = [("identity", "0001_initial")]

    operations = [
        ops.CreateModel(
            name='TeamPluginSettings',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='plugin_settings', on_delete=OnDelete.CASCADE)),
                ('plugin', fields.CharField(max_length=100)),
                ('document', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('secrets_enc', fields.TextField(null=True, unique=False)),
                ('version', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by', fields.ForeignKeyField('identity.User', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'team_plugin_settings', 'app': 'team_settings', 'unique_together': (('team', 'plugin'),), 'pk_attr': 'id', 'table_description': "A team's settings for one plugin, only what the team set (the defaults come from"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TeamSettingsChange',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='settings_changes', on_delete=OnDelete.CASCADE)),
                ('plugin', fields.CharField(max_length=100)),
                ('user', fields.ForeignKeyField('identity.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('user_email', fields.CharField(null=True, max_length=320)),
                ('action', fields.CharField(max_length=16)),
                ('changed', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('version', fields.IntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'team_settings_changes', 'app': 'team_settings', 'indexes': [Index(fields=['team_id', 'plugin', 'at'])], 'pk_attr': 'id', 'table_description': "One change of a team's plugin settings: who, when, and the dotted names of the"},
            bases=['Model'],
        ),
    ]
