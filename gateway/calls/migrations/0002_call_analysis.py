from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('calls', '0001_initial'), ('identity', '0002_user_session_version')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CallAnalysis',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='call_analyses', on_delete=OnDelete.SET_NULL)),
                ('call', fields.ForeignKeyField('calls.Call', source_field='call_id', null=True, db_constraint=True, to_field='id', related_name='analyses', on_delete=OnDelete.SET_NULL)),
                ('provider', fields.CharField(null=True, max_length=64)),
                ('conversation_id', fields.CharField(null=True, unique=True, max_length=128)),
                ('call_sid', fields.CharField(null=True, unique=True, max_length=64)),
                ('agent_id', fields.CharField(null=True, db_index=True, max_length=128)),
                ('status', fields.CharField(null=True, max_length=32)),
                ('direction', fields.CharField(null=True, max_length=16)),
                ('from_number', fields.CharField(null=True, max_length=64)),
                ('to_number', fields.CharField(null=True, max_length=64)),
                ('transcript', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('summary', fields.TextField(null=True, unique=False)),
                ('outcome', fields.CharField(null=True, max_length=16)),
                ('evaluation', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('data_collection', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('duration_seconds', fields.IntField(null=True)),
                ('cost', fields.FloatField(null=True)),
                ('language', fields.CharField(null=True, max_length=32)),
                ('dynamic_variables', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('analyzed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failure_reason', fields.CharField(null=True, max_length=128)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('personalization', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('personalized_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('audio', fields.ForeignKeyField('calls.Recording', source_field='audio_id', null=True, db_constraint=True, to_field='id', related_name='analyses', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'call_analyses', 'app': 'calls', 'pk_attr': 'id', 'table_description': 'What a voice agent made of a call, in terms any agent plugin can fill in: the'},
            bases=['Model'],
        ),
    ]
