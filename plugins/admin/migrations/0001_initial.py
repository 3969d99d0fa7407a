from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='SetupRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slot', fields.CharField(default='super_admin', unique=True, max_length=32)),
                ('user_id', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'admin_setup', 'app': 'admin', 'pk_attr': 'id', 'table_description': 'The record of the one-time super-admin setup.'},
            bases=['Model'],
        ),
    ]
