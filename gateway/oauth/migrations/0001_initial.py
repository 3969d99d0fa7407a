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
            name='OAuthConnection',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='oauth_connections', on_delete=OnDelete.CASCADE)),
                ('provider', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='connected', max_length=32)),
                ('account_id', fields.CharField(default='', max_length=255)),
                ('account_label', fields.CharField(default='', max_length=320)),
                ('account_data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('options', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('scopes', fields.TextField(default='', unique=False)),
                ('token_type', fields.CharField(default='Bearer', max_length=32)),
                ('access_token_enc', fields.TextField(null=True, unique=False)),
                ('refresh_token_enc', fields.TextField(null=True, unique=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('connected_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('connected_by', fields.ForeignKeyField('identity.User', source_field='connected_by_id', null=True, db_constraint=True, to_field='id', related_name='oauth_connections', on_delete=OnDelete.SET_NULL)),
                ('refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'oauth_connections', 'app': 'oauth', 'unique_together': (('team', 'provider'),), 'pk_attr': 'id', 'table_description': "A team's connection to a provider. Tokens are Fernet ciphertexts (gateway.crypto)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('state_hash', fields.CharField(unique=True, max_length=64)),
                ('provider', fields.CharField(max_length=64)),
                ('team', fields.ForeignKeyField('identity.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='oauth_states', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('identity.User', source_field='user_id', db_constraint=True, to_field='id', related_name='oauth_states', on_delete=OnDelete.CASCADE)),
                ('code_verifier_enc', fields.TextField(null=True, unique=False)),
                ('return_to', fields.CharField(null=True, max_length=2000)),
                ('options', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'oauth_states', 'app': 'oauth', 'pk_attr': 'id', 'table_description': 'A pending authorization. Only a SHA-256 of the state value is kept, so a read of'},
            bases=['Model'],
        ),
    ]
