from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('identity', '0002_user_session_version'), ('jobs', '0001_initial'), ('webhooks', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Job',
            name='history',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
