"""Signed but unusual Twilio payloads, on SQLite and PostgreSQL. A delivery that could
never be stored (a parameter the plugin reads sent twice, a number past its column, a
value longer than its column, a NUL) is ``400``: Twilio does not retry a 4xx, and
retrying could never help. Nothing of it is stored. Only our own failures are 503."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.calls.models import Call, Recording
from gateway.webhooks.models import WebhookEvent
from tests.support.fake_twilio import sid, signed

ACCOUNT = "AC" + "11" * 16
TOKEN = "current-auth-token-0001"
NUMBER = "+15005550006"
BASE = "https://gateway.test/api/webhooks/twilio/"


@pytest.fixture
async def client(make_app: Any, db_kind: str) -> Any:
    app = await make_app(
        db=db_kind,
        plugins={"twilio_voice": {"account_sid": ACCOUNT, "auth_token": TOKEN}},
    )
    return app.test_client()


def call_pairs(**extra: str) -> list[tuple[str, str]]:
    form = {
        "AccountSid": ACCOUNT,
        "CallSid": sid("CA"),
        "CallStatus": "completed",
        "Direction": "inbound",
        "From": "+14155550100",
        "To": NUMBER,
        "SequenceNumber": "3",
        **extra,
    }
    return list(form.items())


def recording_pairs(**extra: str) -> list[tuple[str, str]]:
    form = {
        "AccountSid": ACCOUNT,
        "CallSid": sid("CA"),
        "RecordingSid": sid("RE"),
        "RecordingStatus": "completed",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/x/Recordings/y",
        "RecordingDuration": "12",
        "RecordingChannels": "1",
        **extra,
    }
    return list(form.items())


async def post(client: Any, route: str, pairs: list[tuple[str, str]]) -> Any:
    """Signed exactly as Twilio signs (repeated names included: the library signs
    every value of a name)."""
    from werkzeug.datastructures import MultiDict

    headers = signed(TOKEN, BASE + route, MultiDict(pairs))
    return await client.post(
        f"/api/webhooks/twilio/{route}", data=urlencode(pairs).encode(), headers=headers
    )


async def stored() -> tuple[int, int, int]:
    return (
        await WebhookEvent.all().count(),
        await Call.all().count(),
        await Recording.all().count(),
    )


def repeated(pairs: list[tuple[str, str]], name: str, other: str) -> list[tuple[str, str]]:
    return [*pairs, (name, other)]


BIG = str(2**63 + 1)


def cases() -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        ("repeated CallStatus", "status", repeated(call_pairs(), "CallStatus", "ringing")),
        ("repeated CallSid", "voice", repeated(call_pairs(), "CallSid", sid("CA"))),
        ("repeated To", "voice", repeated(call_pairs(), "To", "+15005550007")),
        (
            "repeated RecordingSid",
            "recording",
            repeated(recording_pairs(), "RecordingSid", sid("RE")),
        ),
        ("SequenceNumber past 2^63", "status", call_pairs(SequenceNumber=BIG)),
        ("SequenceNumber past int4", "status", call_pairs(SequenceNumber=str(2**31))),
        ("CallDuration past 2^63", "status", call_pairs(CallDuration=BIG)),
        ("negative CallDuration", "status", call_pairs(CallDuration="-5")),
        ("RecordingDuration past 2^63", "recording", recording_pairs(RecordingDuration=BIG)),
        ("RecordingChannels past int2", "recording", recording_pairs(RecordingChannels="40000")),
        ("To longer than its column", "status", call_pairs(To="+1" + "5" * 70)),
        ("From longer than its column", "voice", call_pairs(From="sip:" + "a" * 80)),
        (
            "RecordingUrl over 1024",
            "recording",
            recording_pairs(RecordingUrl="https://api.twilio.com/" + "r" * 1100),
        ),
        ("CallStatus longer than its column", "status", call_pairs(CallStatus="x" * 40)),
        ("NUL in a value", "status", call_pairs(CallerName="a\x00b")),
        ("NUL in a stored value", "voice", call_pairs(Direction="in\x00bound")),
        ("recording of a malformed call", "recording", recording_pairs(CallSid="CA123")),
    ]


@pytest.mark.parametrize("label,route,pairs", cases(), ids=[c[0] for c in cases()])
async def test_unstorable_signed_payload_is_400_and_stores_nothing(
    client: Any, label: str, route: str, pairs: list[tuple[str, str]]
) -> None:
    resp = await post(client, route, pairs)
    assert resp.status_code == 400, (label, resp.status_code, await resp.get_data(as_text=True))
    assert (await resp.get_json())["code"] == "VALIDATION_ERROR"
    assert await stored() == (0, 0, 0)


async def test_a_sip_address_up_to_the_column_is_stored_unrouted(client: Any) -> None:
    """A ``To`` that is not a phone number (a SIP URI: longer than any E.164 number but
    within the call's column) cannot route to a team: stored unrouted, answered as an
    unknown number, never a retry loop."""
    to = "sip:support@acme-renchi.sip.twilio.com"  # 38 characters
    resp = await post(client, "voice", call_pairs(To=to))
    assert resp.status_code == 200
    event = await WebhookEvent.get()
    assert (event.status, event.phone_number) == ("unrouted", None)
    assert (await Call.get()).to_number == to


async def test_numbers_within_their_columns_are_accepted(client: Any) -> None:
    pairs = call_pairs(SequenceNumber=str(2**31 - 1), CallDuration=str(2**31 - 1))
    assert (await post(client, "status", pairs)).status_code == 200
    pairs = recording_pairs(RecordingChannels="32767")
    assert (await post(client, "recording", pairs)).status_code == 200
