from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Team',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('time_zone', fields.CharField(default='UTC', max_length=64)),
                ('recording_retention_days', fields.IntField(default=90)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'teams', 'app': 'identity', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PhoneNumber',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='phone_numbers', on_delete=OnDelete.CASCADE)),
                ('number', fields.CharField(unique=True, max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'phone_numbers', 'app': 'identity', 'pk_attr': 'id', 'table_description': 'A phone number (E.164) a team answers. Routes inbound calls to the team.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('name', fields.CharField(default='', max_length=200)),
                ('password_hash', fields.CharField(null=True, max_length=255)),
                ('is_super_admin', fields.BooleanField(default=False)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'identity', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('identity.User', source_field='user_id', db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.CASCADE)),
                ('prefix', fields.CharField(db_index=True, max_length=16)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('label', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_tokens', 'app': 'identity', 'pk_attr': 'id', 'table_description': 'An API token. Only a SHA-256 of the token is stored. The prefix helps humans'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Membership',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('identity.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'memberships', 'app': 'identity', 'unique_together': (('team', 'user'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VoiceAgent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='voice_agents', on_delete=OnDelete.CASCADE)),
                ('agent_id', fields.CharField(unique=True, max_length=128)),
                ('label', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'voice_agents', 'app': 'identity', 'pk_attr': 'id', 'table_description': 'A voice-agent id (at the agent provider) that belongs to a team.'},
            bases=['Model'],
        ),
    ]
