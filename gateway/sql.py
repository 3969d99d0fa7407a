"""Hand-written SQL for the few hot paths where the ORM's per-query cost shows (the
webhook ingest transaction). Values always travel as parameters; only fixed table and
column names are formatted into the text. Everything else uses the ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from tortoise.fields import DatetimeField, Field, JSONField
from tortoise.fields.data import JSON_DUMPS
from tortoise.models import Model
from tortoise.validators import MaxLengthValidator

from gateway.db import is_postgres, is_sqlite
from gateway.responses import compact_json  # what tortoise's JSON_DUMPS writes

__all__ = [
    "chunked",
    "db_values",
    "insert_returning",
    "is_postgres",
    "is_sqlite",
    "marks",
    "python_values",
    "update_many",
]

# Both SQLite (since 3.32) and asyncpg refuse statements with more than 32766 parameters.
MAX_PARAMS = 30_000


def chunked(items: Sequence[Any], size: int = MAX_PARAMS) -> Iterator[Sequence[Any]]:
    """``items`` in slices that fit in one statement's parameters."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(conn: Any, count: int, start: int = 0) -> str:
    """``(?, ?, ?)`` on SQLite, ``($1, $2, $3)`` on PostgreSQL (asyncpg numbers them)."""
    if conn.capabilities.dialect == "postgres":
        return "(" + ", ".join(f"${start + i + 1}" for i in range(count)) + ")"
    return "(" + ", ".join("?" * count) + ")"


def db_values(model: type[Model], columns: Sequence[str], values: Sequence[Any]) -> list[Any]:
    """``values`` as the ORM would send them for ``columns`` (JSON text, aware
    datetimes, ...), so rows written here read back through the ORM unchanged, and
    refused as the ORM refuses them (``ValidationError``)."""
    converters = _converters(model, tuple(columns))
    return [convert(v) for convert, v in zip(converters, values, strict=True)]


_EMPTY_JSON: dict[type, str] = {dict: "{}", list: "[]"}


def _same(value: Any) -> Any:
    return value


@cache
def _converters(model: type[Model], columns: tuple[str, ...]) -> tuple[Callable[[Any], Any], ...]:
    return tuple(_converter(model, c) for c in columns)


def _converter(model: type[Model], column: str) -> Callable[[Any], Any]:
    """The field's own ``to_db_value``, with a shortcut for the common case of a value
    that already has the field's type and fits its length: that is what the ORM's
    conversion would return, and the validators are most of its cost."""
    field = model._meta.fields_map.get(column)
    if field is None:  # a foreign key's ``*_id`` column: a plain integer
        return _same

    def full(value: Any) -> Any:
        return field.to_db_value(value, model)

    if type(field) is DatetimeField and not field.validators and not field.auto_now:
        # An aware datetime is returned unchanged; a naive one is made aware (and
        # warned about) by the field.
        def aware(value: Any) -> Any:
            if type(value) is datetime and value.utcoffset() is not None:
                return value
            return None if value is None and field.null else full(value)

        return aware
    if type(field) is JSONField and not field.validators and field.encoder is JSON_DUMPS:
        # A dict or list is the field's own encoder's text (json.dumps with separators
        # builds a new encoder per call: 4 us for "[]"; this one is built once);
        # anything else (a str to check, a model, None) takes the field's path.
        def as_json(value: Any) -> Any:
            if type(value) in (dict, list):
                return compact_json(value) if value else _EMPTY_JSON[type(value)]
            return full(value)

        return as_json
    if type(field).to_db_value is not Field.to_db_value:
        return full  # the rest: converted by the field itself
    if any(not isinstance(v, MaxLengthValidator) for v in field.validators):
        return full
    lengths = (v.max_length for v in field.validators if isinstance(v, MaxLengthValidator))
    limit = min(lengths, default=None)
    kind = field.field_type

    def fast(value: Any) -> Any:
        if value is None and field.null:
            return None
        if type(value) is kind and (limit is None or len(value) <= limit):
            return value
        return full(value)

    return fast


def python_values(model: type[Model], row: Any, columns: Iterable[str]) -> dict[str, Any]:
    """A fetched row's ``columns`` as the ORM would give them (datetimes parsed, ...)."""
    fields = model._meta.fields_map
    return {c: fields[c].to_python_value(row[c]) if c in fields else row[c] for c in columns}


async def insert_returning(
    conn: Any,
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[dict[str, Any]]:
    """Multi-row ``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING ...``: the rows
    that were inserted, not those that already existed. Both back ends accept it
    (SQLite 3.35+). One statement per :data:`MAX_PARAMS` values."""
    per_statement = max(1, MAX_PARAMS // len(columns))
    if len(rows) > per_statement:
        out: list[dict[str, Any]] = []
        for chunk in chunked(rows, per_statement):
            out += await insert_returning(conn, model, columns, chunk, conflict, returning)
        return out
    values: list[Any] = []
    groups: list[str] = []
    numbered = conn.capabilities.dialect == "postgres"
    same = marks(conn, len(columns))  # SQLite's "?" groups are all alike
    for row in rows:
        groups.append(marks(conn, len(columns), start=len(values)) if numbered else same)
        values.extend(db_values(model, columns, row))
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES {', '.join(groups)} ON CONFLICT ({', '.join(conflict)}) DO NOTHING "
        f"RETURNING {', '.join(returning)}"
    )
    return await conn.execute_query_dict(sql, values)


async def update_many(
    conn: Any,
    model: type[Model],
    columns: Sequence[str],
    key: str,
    rows: Sequence[Sequence[Any]],
) -> None:
    """``UPDATE ... SET columns WHERE key = ?`` once per row (each row is the column
    values then the key), sent as one ``executemany``."""
    params = marks(conn, len(columns) + 1)[1:-1].split(", ")
    assignments = ", ".join(f"{c} = {p}" for c, p in zip(columns, params, strict=False))
    sql = f"UPDATE {model._meta.db_table} SET {assignments} WHERE {key} = {params[-1]}"  # noqa: S608
    values = [db_values(model, (*columns, key), row) for row in rows]
    await conn.execute_many(sql, values)
