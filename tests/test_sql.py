"""gateway/sql.py: the few hand-written statements convert and refuse values exactly as
the ORM does, so their rows read back through the ORM unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tortoise.exceptions import FieldError, ValidationError
from tortoise.transactions import in_transaction

from gateway.sql import db_values, insert_returning
from gateway.webhooks.models import WebhookEvent

WHEN = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
ROW = {
    "source": "s",
    "dedup_key": "k" * 255,
    "type": "t",
    "status": "routed",
    "team_id": None,
    "payload": {"a": [1, "é"]},
    "phone_number": None,
    "agent_id": "agent",
    "occurred_at": WHEN,
    "received_at": WHEN,
}


def test_values_are_what_the_orm_would_send():
    assert db_values(WebhookEvent, ["status"], [7]) == ["7"]  # cast, as the ORM casts
    naive = datetime(2026, 5, 1, 12, 30)
    field = WebhookEvent._meta.fields_map["occurred_at"]
    with pytest.warns(RuntimeWarning, match="naive datetime"):  # the ORM's own warning
        assert db_values(WebhookEvent, ["occurred_at"], [naive]) == [
            field.to_db_value(naive, WebhookEvent)
        ]
    columns, values = list(ROW), list(ROW.values())
    fields = WebhookEvent._meta.fields_map
    expected = [
        fields[c].to_db_value(v, WebhookEvent) if c in fields else v for c, v in ROW.items()
    ]
    assert db_values(WebhookEvent, columns, values) == expected


def test_json_is_the_fields_own_text_and_a_string_is_still_checked():
    field = WebhookEvent._meta.fields_map["payload"]
    for value in ({"a": [1, "\u00e9"]}, [1, {"b": None}], {}, [], '{"c": 1}'):
        assert db_values(WebhookEvent, ["payload"], [value]) == [
            field.to_db_value(value, WebhookEvent)
        ]
    with pytest.raises(FieldError):
        db_values(WebhookEvent, ["payload"], ["{not json"])


@pytest.mark.parametrize(
    ("column", "value"),
    [("dedup_key", "k" * 256), ("source", None), ("status", "x" * 17), ("phone_number", "+1" * 20)],
)
def test_values_the_orm_refuses_are_refused(column, value):
    with pytest.raises((ValidationError, TypeError)):
        db_values(WebhookEvent, [column], [value])


async def test_insert_returning_skips_existing_rows_and_reads_back(any_app):
    async with in_transaction() as conn:
        first = await insert_returning(
            conn, WebhookEvent, list(ROW), [list(ROW.values())], ("source", "dedup_key"), ("id",)
        )
        again = await insert_returning(
            conn, WebhookEvent, list(ROW), [list(ROW.values())], ("source", "dedup_key"), ("id",)
        )
    assert len(first) == 1 and again == []
    event = await WebhookEvent.get(id=first[0]["id"])
    assert (event.payload, event.occurred_at, event.agent_id) == ({"a": [1, "é"]}, WHEN, "agent")


async def test_batches_beyond_one_statements_parameters_are_split(any_app, monkeypatch):
    """A batch larger than one statement may carry is sent in several, same result."""
    import gateway.sql

    monkeypatch.setattr(gateway.sql, "MAX_PARAMS", 25)  # two rows of ten columns each
    rows = [[*list(ROW.values())[:1], f"key{n}", *list(ROW.values())[2:]] for n in range(5)]
    async with in_transaction() as conn:
        inserted = await insert_returning(
            conn, WebhookEvent, list(ROW), rows, ("source", "dedup_key"), ("dedup_key",)
        )
    assert sorted(r["dedup_key"] for r in inserted) == [f"key{n}" for n in range(5)]
    assert await WebhookEvent.all().count() == 5
