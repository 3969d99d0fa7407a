"""Reading Twilio's form parameters: required ones, numbers, timestamps, and which side of
a call is the team's.

A signed request is still checked: every parameter the plugin reads must come once (a
repeated ``CallStatus`` would leave us guessing which one counts), fit the column it is
stored in, and numbers must fit theirs. Anything else is a ``400``: Twilio does not
retry it, and retrying could never make it fit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.calls import Call, Recording
from gateway.errors import ValidationError
from gateway.webhooks import id_max, max_length

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
# The only numbers a team registers (gateway.identity.validation), hence the only ones
# that can route a call; anything else (a SIP URI, a client name) is stored unrouted.
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")

# Parameters the plugin stores, and the column each one ends up in.
TEXT_LIMITS: dict[str, int | None] = {
    "AccountSid": max_length(Call, "account_id"),
    "Direction": max_length(Call, "direction"),
    "From": max_length(Call, "from_number"),
    "Caller": max_length(Call, "from_number"),
    "To": max_length(Call, "to_number"),
    "Called": max_length(Call, "to_number"),
    "CallStatus": max_length(Call, "status"),
    "RecordingStatus": max_length(Recording, "provider_status"),
    "RecordingUrl": max_length(Recording, "source_url"),
    "ErrorCode": None,  # truncated to the column when stored
    "Timestamp": None,
    "RecordingStartTime": None,
}
INT_LIMITS: dict[str, int] = {
    "SequenceNumber": id_max(Call, "last_sequence"),
    "CallDuration": id_max(Call, "duration_seconds"),
    "RecordingDuration": id_max(Recording, "duration_seconds"),
    "RecordingChannels": id_max(Recording, "channels"),
}


def value(form: Any, name: str) -> str | None:
    """The one value of ``name``, or None when absent.

    :raises ValidationError: when the parameter is repeated.
    """
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        values = getlist(name)
    else:  # a stored payload: a repeated name became a list
        raw = form.get(name)
        values = [] if raw is None else raw if isinstance(raw, list) else [raw]
    if len(values) > 1:
        raise ValidationError(f"parameter {name} is repeated")
    return values[0] if values else None


def check(form: Any) -> None:
    """Every parameter the plugin reads comes at most once and fits where it is kept
    (one pass over the form: this runs on every webhook). A NUL or a lone surrogate in
    any value is the engine's check (gateway.webhooks.checks), for every source.

    :raises ValidationError: naming the parameter, never quoting its value.
    """
    for name, values in form.lists():
        if name not in TEXT_LIMITS and name not in INT_LIMITS:
            continue
        if len(values) > 1:
            raise ValidationError(f"parameter {name} is repeated")
        raw = values[0]
        if name in INT_LIMITS:
            _int(name, raw)
            continue
        limit = TEXT_LIMITS[name]
        if limit is not None and len(raw) > limit:
            raise ValidationError(f"parameter {name} is longer than {limit} characters")


def required(form: Any, name: str) -> str:
    raw = (value(form, name) or "").strip()
    if not raw:
        raise ValidationError(f"missing parameter {name}")
    return raw


def sid(form: Any, name: str, prefix: str) -> str:
    raw = required(form, name)
    if not raw.startswith(prefix) or not _SID.match(raw):
        raise ValidationError(f"parameter {name} is not a {prefix} sid")
    return raw


def optional_int(form: Any, name: str) -> int | None:
    """A non-negative integer that fits its column (``INT_LIMITS``), or None."""
    return _int(name, value(form, name) or "")


def _int(name: str, raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    limit = INT_LIMITS.get(name, id_max(None))
    if not _DIGITS.match(raw) or int(raw) > limit:
        raise ValidationError(f"parameter {name} is not an integer from 0 to {limit}")
    return int(raw)


def timestamp(form: Any, name: str = "Timestamp") -> datetime | None:
    """Twilio's RFC 2822 timestamps; a value we cannot read is ignored, not fatal."""
    raw = (value(form, name) or "").strip()
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def team_number(form: Any) -> str | None:
    """The team's own number in the call: the called number for inbound calls, the
    caller ID for calls the team placed (``outbound-api`` / ``outbound-dial``). Only an
    E.164 number can be a team's; anything else routes nowhere."""
    direction = value(form, "Direction") or "inbound"
    number = caller(form) if direction.startswith("outbound") else called(form)
    return number if number and _E164.match(number) else None


def caller(form: Any) -> str | None:
    """Who placed the call (``From``, or the older ``Caller``)."""
    return value(form, "From") or value(form, "Caller")


def called(form: Any) -> str | None:
    """Who was called (``To``, or the older ``Called``)."""
    return value(form, "To") or value(form, "Called")


def payload(form: Any) -> dict[str, Any]:
    """Every parameter, kept as received (a repeated name keeps all its values), so a
    handler written later can still read what Twilio said."""
    lists = form.lists() if hasattr(form, "lists") else ((k, [v]) for k, v in form.items())
    return {name: values[0] if len(values) == 1 else values for name, values in lists}
