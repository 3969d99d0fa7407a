"""``X-Twilio-Signature``: the same answers as ``twilio.request_validator.RequestValidator``
(the tests check that), with less work per request.

The library computes two HMACs per token (the URL without, then with, the default port).
Twilio signs the URL it was configured with, which is almost always exactly our public
URL, so we try that one first and only then the port variants; the signed string is
built once and shared by every token (current, previous, subaccount).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
_HASHES = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}


def _grouped(params: Any) -> dict[str, set[str]]:
    """Each name's distinct values, read in one pass (this runs on every request)."""
    lists = getattr(params, "lists", None)
    if callable(lists):  # werkzeug's MultiDict: items() would give first values only
        return {name: set(values) for name, values in lists()}
    grouped: dict[str, set[str]] = {}
    for name, value in params.items():  # multidict repeats names; a dict has one each
        grouped.setdefault(name, set()).add(value)
    return grouped


def signed_params(params: Mapping[str, Any] | None) -> str:
    """Every parameter as ``name + value``, names sorted, each name's distinct values
    sorted (Twilio's rule, including how the library treats repeated names)."""
    if not params:
        return ""
    grouped = _grouped(params)
    parts: list[str] = []
    for name in sorted(grouped):
        values = grouped[name]
        if len(values) == 1:
            parts.append(name + next(iter(values)))
        else:
            parts.extend(name + value for value in sorted(values))
    return "".join(parts)


def url_variants(url: str) -> list[str]:
    """The URL as configured first, then without a port and with the default port, the
    two forms the library accepts (Twilio is not consistent about the port)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    bare = host.rpartition(":")[0] if parts.port else host
    default = "443" if parts.scheme == "https" else "80"
    without = urlunsplit(parts._replace(netloc=userinfo + bare))
    with_port = (
        url if parts.port else urlunsplit(parts._replace(netloc=f"{userinfo}{bare}:{default}"))
    )
    out = [url]
    for candidate in (without, with_port):
        if candidate not in out:
            out.append(candidate)
    return out


def compute(
    token: str, url: str, params: Mapping[str, Any] | None = None, algorithm: str = HMAC_SHA1
) -> str:
    """Signature of a request, as Twilio computes it (for tests and tooling)."""
    digest = hmac.new(token.encode(), (url + signed_params(params)).encode(), _HASHES[algorithm])
    return base64.b64encode(digest.digest()).decode()


def body_hash_ok(url: str, body: bytes) -> bool | None:
    """For JSON webhooks Twilio puts ``bodySHA256`` in the query and signs only the URL.

    :return: ``None`` when the URL carries no body hash, else whether it matches.
    """
    claimed = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not claimed:
        return None
    return hmac.compare_digest(hashlib.sha256(body).hexdigest(), claimed[0])


def matching_token(
    tokens: Iterable[str],
    url: str,
    params: Mapping[str, Any] | None,
    signature: str,
    algorithm: str = HMAC_SHA1,
) -> int | None:
    """Index of the token that signed this request, or ``None``.

    Every comparison is constant-time. The common case costs one HMAC.
    """
    hash_fn = _HASHES.get((algorithm or HMAC_SHA1).upper())
    if hash_fn is None or not signature:
        return None
    expected = signature.encode()
    tail = signed_params(params).encode()
    keys = [t.encode() for t in tokens]

    def signed_by(candidate: str) -> int | None:
        message = candidate.encode() + tail
        for index, key in enumerate(keys):
            mac = base64.b64encode(hmac.digest(key, message, hash_fn))
            if hmac.compare_digest(mac, expected):
                return index
        return None

    # The configured URL first: the port variants are only built when it fails.
    found = signed_by(url)
    if found is None:
        for candidate in url_variants(url)[1:]:
            found = signed_by(candidate)
            if found is not None:
                break
    return found


def request_signing(headers: Mapping[str, str]) -> tuple[str | None, str]:
    """``(shared key id, algorithm)`` from ``X-Twilio-Webhooks-Signature-Settings``
    (``key=<id>,algorithm=HMAC_SHA256``); ``(None, HMAC_SHA1)`` without it, i.e. the
    classic Auth Token signature."""
    header = headers.get(SETTINGS_HEADER)
    if not header:
        return None, HMAC_SHA1
    key_id = None
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "key" and value.strip():
            key_id = value.strip()
    return key_id, get_signature_algorithm(header).upper()
