"""Our X-Twilio-Signature check gives the same answers as the twilio library's
RequestValidator, which is the reference (it is what Twilio ships)."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from plugins.twilio_voice import signature

TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_documented_test_vector():
    assert signature.compute(TOKEN, DOC_URL, DOC_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert (
        signature.matching_token([TOKEN], DOC_URL, DOC_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") == 0
    )


URLS = [
    "https://gateway.test/api/webhooks/twilio/status",
    "https://gateway.test:443/api/webhooks/twilio/status",
    "https://gateway.test:8443/api/webhooks/twilio/status",
    "http://gateway.test/api/webhooks/twilio/status",
    "http://gateway.test:80/api/webhooks/twilio/status",
    "https://gateway.test/api/webhooks/twilio/status?team=7&x=%20y",
    "https://other.test/api/webhooks/twilio/status",
]
FORMS = [
    {},
    DOC_PARAMS,
    {"Body": "héllo wörld ✓", "Empty": ""},
    MultiDict([("Digits", "2"), ("Digits", "1"), ("Digits", "2"), ("a", "b")]),
]


@pytest.mark.parametrize(("signed_url", "checked_url"), list(itertools.product(URLS, URLS)))
def test_same_verdict_as_the_library_for_every_url_pair(signed_url, checked_url):
    validator = RequestValidator(TOKEN)
    for form in FORMS:
        sig = validator.compute_signature(signed_url, form)
        expected = validator.validate(checked_url, form, sig)
        ours = signature.matching_token(["other-token", TOKEN], checked_url, form, sig)
        assert (ours is not None) == expected, (signed_url, checked_url, form)
        if expected:
            assert ours == 1


def test_tampered_added_and_removed_params_fail():
    sig = RequestValidator(TOKEN).compute_signature(DOC_URL, DOC_PARAMS)
    assert signature.matching_token([TOKEN], DOC_URL, {**DOC_PARAMS, "Digits": "9"}, sig) is None
    assert signature.matching_token([TOKEN], DOC_URL, {**DOC_PARAMS, "X": "1"}, sig) is None
    fewer = {k: v for k, v in DOC_PARAMS.items() if k != "Digits"}
    assert signature.matching_token([TOKEN], DOC_URL, fewer, sig) is None
    assert signature.matching_token([TOKEN], DOC_URL, DOC_PARAMS, "") is None
    assert signature.matching_token([], DOC_URL, DOC_PARAMS, sig) is None


def test_rotation_accepts_old_and_new_token():
    for token in ("old-token", "new-token"):
        sig = RequestValidator(token).compute_signature(DOC_URL, DOC_PARAMS)
        assert signature.matching_token(["new-token", "old-token"], DOC_URL, DOC_PARAMS, sig) in (
            0,
            1,
        )
    sig = RequestValidator("revoked").compute_signature(DOC_URL, DOC_PARAMS)
    assert signature.matching_token(["new-token", "old-token"], DOC_URL, DOC_PARAMS, sig) is None


def test_json_body_is_covered_by_body_sha256():
    body = json.dumps({"event": "x"}).encode()
    url = f"https://gateway.test/hook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    validator = RequestValidator(TOKEN)
    sig = validator.compute_signature(url, {})
    assert validator.validate(url, body.decode(), sig)
    assert signature.body_hash_ok(url, body) is True
    assert signature.matching_token([TOKEN], url, None, sig) == 0
    assert signature.body_hash_ok(url, body + b" ") is False
    assert not validator.validate(url, (body + b" ").decode(), sig)
    assert signature.body_hash_ok("https://gateway.test/hook", body) is None


def test_sha256_shared_key_algorithm_matches_library():
    sig = RequestValidator(TOKEN).compute_signature(DOC_URL, DOC_PARAMS, algorithm="HMAC_SHA256")
    assert signature.matching_token([TOKEN], DOC_URL, DOC_PARAMS, sig, "HMAC_SHA256") == 0
    assert signature.matching_token([TOKEN], DOC_URL, DOC_PARAMS, sig) is None
    assert signature.matching_token([TOKEN], DOC_URL, DOC_PARAMS, sig, "HMAC_MD5") is None


def test_exact_url_is_tried_first_so_the_common_case_is_one_hmac():
    assert signature.url_variants("https://h/x") == ["https://h/x", "https://h:443/x"]
    assert signature.url_variants("https://h:443/x") == ["https://h:443/x", "https://h/x"]
    assert signature.url_variants("http://[::1]:8000/x")[1] == "http://[::1]/x"
