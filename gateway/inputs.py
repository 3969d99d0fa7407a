"""Request input, checked once against what the database can hold.

Every id the API reads (path, query, header, cursor, a token's team claim), every short
text filter and every JSON body goes through here, so a value the database would refuse
(an id past the column's integer range: int4 for most ids on PostgreSQL; a filter longer
than its column; a NUL, which PostgreSQL text cannot hold; a lone surrogate, which no
UTF-8 driver can encode) is a ``400 VALIDATION_ERROR`` naming the field, on both back
ends alike, and never a database error. Messages never repeat the value: it may be
huge, and error bodies end up in logs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from quart import Quart, g, request
from tortoise.models import Model

from gateway.errors import ValidationError

# The narrowest id column (IntField: int4 on PostgreSQL), for ids of no stated model.
INT4_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")


def invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, extra={"field": field})


def id_max(model: type[Model] | None, column: str = "id") -> int:
    """The largest value ``model.column`` holds (from the field's own constraints:
    int4 for ``IntField``, int8 for ``BigIntField``)."""
    if model is None:
        return INT4_MAX
    field = model._meta.fields_map[column]
    return int(getattr(field, "constraints", {}).get("le", INT4_MAX))


def parse_id(value: Any, field: str, model: type[Model] | None = None, column: str = "id") -> int:
    """A positive integer id that fits ``model.column`` (an int, or a string of digits).

    :raises ValidationError: anything else, naming ``field``.
    """
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is None or not 1 <= number <= id_max(model, column):
        raise invalid(field, f"{field} must be a positive integer id")
    return number


def optional_id(
    value: Any, field: str, model: type[Model] | None = None, column: str = "id"
) -> int | None:
    """:func:`parse_id`, with ``None`` and ``""`` meaning "not given"."""
    if value is None or value == "":
        return None
    return parse_id(value, field, model, column)


def max_length(model: type[Model], column: str) -> int | None:
    """A text column's ``max_length`` (None for unbounded text)."""
    return getattr(model._meta.fields_map[column], "max_length", None)


def check_text(value: str, field: str, limit: int | None) -> str:
    """``value`` unchanged if it fits a text column of ``limit`` characters."""
    if "\x00" in value:
        raise invalid(field, f"{field} must not contain NUL characters")
    if limit is not None and len(value) > limit:
        raise invalid(field, f"{field} must be at most {limit} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(field, f"{field} is not valid Unicode") from None
    return value


def text_arg(name: str, model: type[Model], column: str | None = None) -> str | None:
    """A query-string filter on ``model.column`` (default: the same name), or None when
    absent or empty; longer than the column can hold is a 400, not a database error."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return check_text(raw, name, max_length(model, column or name))


def int_arg(name: str, default: int | None = None, *, maximum: int = INT4_MAX) -> int | None:
    """A non-negative integer query parameter (a count, a limit) up to ``maximum``."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or int(raw) > maximum:
        raise invalid(name, f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


def check_strings(data: Any, field: str) -> None:
    """Every string in ``data`` (JSON-like: dict keys and values, lists, at any depth)
    must be storable. The strings are joined and checked once: this runs on every
    webhook, so it must cost little more than one pass over the characters."""
    strings: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings.append(item)
        elif isinstance(item, dict):
            strings.extend(k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    check_text("".join(strings), field, None)


async def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object. ``optional``: an empty body is ``{}``.

    The content type is not checked (``curl -d`` sends a form type); cross-site writes
    are refused by their ``Origin`` instead (see :func:`gateway.cors.origin_trusted`).

    :raises ValidationError: bytes that are not UTF-8 JSON, anything but an object, a
        string (key or value, at any depth) holding a NUL or a lone surrogate, or a body
        that does not fit the view's declared request model (naming the field).
    """
    # Bounded by the app's BODY_TIMEOUT.
    raw = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid("body", "Request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "Request body must be a JSON object")
    check_strings(body, "body")
    model = g.get("api_request_model")
    if model is not None:  # the view's declared request model (gateway.contract.api)
        from gateway.contract.route import check_body

        check_body(body, model)  # refuses with 400; the view reads the checked dict
    return body


def install(app: Quart) -> None:
    """Refuse a NUL anywhere in the path or the query string, before any view: no
    route of ours has a use for one, and PostgreSQL cannot store it."""

    @app.before_request
    async def refuse_nul() -> None:
        if "\x00" in request.path or b"%00" in request.query_string:
            raise invalid("url", "The URL must not contain NUL characters")
