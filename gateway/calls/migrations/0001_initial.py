from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True
    dependencies = [("identity", "0001_initial")]

    operations = [
        ops.CreateModel(
            name='Call',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='calls', on_delete=OnDelete.SET_NULL)),
                ('external_id', fields.CharField(unique=True, max_length=64)),
                ('account_id', fields.CharField(null=True, max_length=64)),
                ('direction', fields.CharField(null=True, max_length=32)),
                ('from_number', fields.CharField(null=True, max_length=64)),
                ('to_number', fields.CharField(null=True, max_length=64)),
                ('status', fields.CharField(max_length=32)),
                ('status_rank', fields.SmallIntField(default=0)),
                ('last_sequence', fields.IntField(null=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('duration_seconds', fields.IntField(null=True)),
                ('agent_id', fields.CharField(null=True, max_length=128)),
                ('conversation_id', fields.CharField(null=True, db_index=True, max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'calls', 'app': 'calls', 'pk_attr': 'id', 'table_description': 'One phone call. Status only moves forward (see gateway.calls.status).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Recording',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('call', fields.ForeignKeyField('calls.Call', source_field='call_id', null=True, db_constraint=True, to_field='id', related_name='recordings', on_delete=OnDelete.SET_NULL)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='recordings', on_delete=OnDelete.SET_NULL)),
                ('external_id', fields.CharField(unique=True, max_length=64)),
                ('call_external_id', fields.CharField(null=True, db_index=True, max_length=64)),
                ('account_id', fields.CharField(null=True, max_length=64)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('provider_status', fields.CharField(null=True, max_length=32)),
                ('source_url', fields.CharField(null=True, max_length=1024)),
                ('storage_key', fields.CharField(null=True, max_length=512)),
                ('size_bytes', fields.BigIntField(null=True)),
                ('duration_seconds', fields.IntField(null=True)),
                ('channels', fields.SmallIntField(null=True)),
                ('sha256', fields.CharField(null=True, max_length=64)),
                ('content_type', fields.CharField(null=True, max_length=64)),
                ('expires_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('error', fields.CharField(null=True, max_length=64)),
                ('attempts', fields.IntField(default=0)),
                ('stored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'recordings', 'app': 'calls', 'pk_attr': 'id', 'table_description': 'A call recording: where it came from, where it is stored, and until when.'},
            bases=['Model'],
        ),
    ]
