"""Reading Twilio's form parameters: required ones, numbers, timestamps, and which side of
a call is the team's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.errors import ValidationError

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def required(form: Any, name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise ValidationError(f"missing parameter {name}")
    return value


def sid(form: Any, name: str, prefix: str) -> str:
    value = required(form, name)
    if not value.startswith(prefix) or not _SID.match(value):
        raise ValidationError(f"parameter {name} is not a {prefix} sid")
    return value


def optional_int(form: Any, name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"parameter {name} is not an integer") from None


def timestamp(form: Any, name: str = "Timestamp") -> datetime | None:
    """Twilio's RFC 2822 timestamps; a value we cannot read is ignored, not fatal."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def team_number(form: Any) -> str | None:
    """The team's own number in the call: the called number for inbound calls, the
    caller ID for calls the team placed (``outbound-api`` / ``outbound-dial``)."""
    direction = form.get("Direction") or "inbound"
    return (caller(form) if direction.startswith("outbound") else called(form)) or None


def caller(form: Any) -> str | None:
    """Who placed the call (``From``, or the older ``Caller``)."""
    return form.get("From") or form.get("Caller")


def called(form: Any) -> str | None:
    """Who was called (``To``, or the older ``Called``)."""
    return form.get("To") or form.get("Called")


def payload(form: Any) -> dict[str, Any]:
    """Every parameter, kept as received (a repeated name keeps all its values), so a
    handler written later can still read what Twilio said."""
    lists = form.lists() if hasattr(form, "lists") else ((k, [v]) for k, v in form.items())
    return {name: values[0] if len(values) == 1 else values for name, values in lists}
