"""Input checks for the identity API and CLI. Every failure is a 400 VALIDATION_ERROR
whose body names the offending field (``{"error", "code", "field"}``)."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway import inputs
from gateway.errors import ValidationError
from gateway.identity.models import ROLES

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Deliberately loose: one @, no spaces, a dot in the domain. Delivery is not our job.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
AGENT_ID = re.compile(r"^[A-Za-z0-9_\-:.]{1,128}$")


def invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, extra={"field": field})


async def json_body() -> dict[str, Any]:
    """The request's JSON object (see :func:`gateway.inputs.json_body`)."""
    return await inputs.json_body()


def text(body: dict[str, Any], field: str, *, max_length: int = 200, required: bool = True) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{field} is required")
    value = value.strip()
    if len(value) > max_length:
        raise invalid(field, f"{field} must be at most {max_length} characters")
    return value


def email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or len(value) > 320 or not EMAIL.match(value.strip()):
        raise invalid(field, f"{field} must be an e-mail address")
    return value.strip().lower()


def role(value: Any, field: str = "role") -> str:
    if value not in ROLES:
        raise invalid(field, f"{field} must be one of {', '.join(ROLES)}")
    return value


def phone_number(value: Any, field: str = "number") -> str:
    if not isinstance(value, str) or not E164.match(value.strip()):
        raise invalid(field, f"{field} must be an E.164 number like +14155550100")
    return value.strip()


def agent_id(value: Any, field: str = "agent_id") -> str:
    if not isinstance(value, str) or not AGENT_ID.match(value.strip()):
        raise invalid(field, f"{field} must be 1-128 letters, digits or _-:.")
    return value.strip()


def time_zone(value: Any, field: str = "time_zone") -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise invalid(field, f"{field} must be an IANA time zone like Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(field, f"{field} must be an IANA time zone like Europe/Paris") from None
    return value


def retention_days(value: Any, field: str = "recording_retention_days") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        raise invalid(field, f"{field} must be an integer from 1 to 3650")
    return value


def object_id(value: Any, field: str, model: Any = None) -> int:
    """An id from the path or body (see :func:`gateway.inputs.parse_id`)."""
    return inputs.parse_id(value, field, model)
