"""Phone numbers in E.164 on both sides of a CRM search: the caller's number arrives in
E.164, CRMs store free text ("(415) 555-0199", "+1 415-555-0199", "004930..."). Parsing
is libphonenumber's (the ``phonenumbers`` package); a number written without a
country code is read in the team's region."""

from __future__ import annotations

import phonenumbers


def to_e164(text: str | None, region: str | None = "US") -> str | None:
    """``text`` as E.164 (``+14155550199``), or ``None`` if it is not a phone number."""
    if not text:
        return None
    try:
        number = phonenumbers.parse(str(text), (region or "US").upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """The national significant number's digits (``4155550199`` for ``+14155550199``),
    the form many CRMs hold when the country code was left out."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "".join(c for c in e164 if c.isdigit())
    return phonenumbers.national_significant_number(number)


def same_number(a: str | None, b: str | None, region: str | None = "US") -> bool:
    """Whether two written numbers are the same number."""
    ea, eb = to_e164(a, region), to_e164(b, region)
    return ea is not None and ea == eb
