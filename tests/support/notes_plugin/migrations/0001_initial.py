from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True
    dependencies = [("identity", "0001_initial")]

    operations = [
        ops.CreateModel(
            name="Note",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("team", fields.ForeignKeyField("identity.Team", source_field="team_id", db_constraint=True, to_field="id", related_name="notes", on_delete=OnDelete.CASCADE)),
                ("text", fields.CharField(max_length=200)),
            ],
            options={"table": "test_notes", "app": "notes", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
