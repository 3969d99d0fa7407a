from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='TaskRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.CharField(max_length=100)),
                ('window_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('window_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempt', fields.IntField()),
                ('status', fields.CharField(default='running', max_length=16)),
                ('forced', fields.BooleanField(default=False)),
                ('trigger', fields.CharField(max_length=16)),
                ('owner', fields.CharField(max_length=100)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('heartbeat_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('figures', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('detail', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'scheduled_runs', 'app': 'scheduling', 'unique_together': (('task', 'window_start', 'attempt'),), 'indexes': [Index(fields=['status', 'lease_until'])], 'pk_attr': 'id', 'table_description': 'One run of a scheduled task for one schedule window.'},
            bases=['Model'],
        ),
    ]
