"""The streaming JSON scanner and base64 decoder behind large webhook bodies: checked
against ``json`` and ``base64`` on generated documents, at every block size down to one
byte (so every escape and quote falls on a block boundary somewhere)."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from gateway.webhooks.jsonscan import (
    Span,
    TooLarge,
    base64_chunks,
    copy_base64,
    scan_json_file,
)

CUT = [("data", "full_audio"), ("data", "audio_base_64")]


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _document(rng: random.Random, b64: str, ensure_ascii: bool) -> tuple[str, dict]:
    """A post-call-like document with tricky strings around the audio value."""
    tricky = 'he said "hi" \\ é {[,:]} \\" ' * rng.randint(0, 3)
    data = {
        "agent_id": "agent_1",
        "conversation_id": 'conv_"quoted\\',
        "transcript": [{"role": "agent", "message": tricky}, {"role": "user", "message": None}],
        "nested": [1, {"full_audio": "not the path"}, [{"data": {"full_audio": "nor this"}}]],
        "ok": True,
    }
    text = json.dumps(
        {"type": "post_call_audio", "event_timestamp": 1, "data": data}, ensure_ascii=ensure_ascii
    )
    # The audio's raw JSON text is spliced in as an encoder would have written it.
    text = text.replace('"agent_id"', '"full_audio" :  "' + b64 + '" , "agent_id"', 1)
    return text, data


@pytest.mark.parametrize("seed", range(40))
def test_scan_and_decode_match_json_and_base64(tmp_path, seed):
    rng = random.Random(seed)
    audio = rng.randbytes(rng.randint(1, 2000))
    b64 = base64.b64encode(audio).decode()
    style = seed % 4
    if style == 1:
        b64 = b64.replace("/", "\\/")
    elif style == 2:
        b64 = "\\r\\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    elif style == 3:
        b64 = b64.rstrip("=")
    text, data = _document(rng, b64, ensure_ascii=seed % 2 == 0)
    path = write(tmp_path, text)
    block = rng.choice([1, 2, 3, 5, 7, 64, 4096])
    scanned = scan_json_file(path, CUT, 10**6, block_size=block)
    assert scanned.document["data"] == {**data, "full_audio": ""}
    assert set(scanned.spans) == {("data", "full_audio")}
    span = scanned.spans[("data", "full_audio")]
    assert path.read_bytes()[span.start : span.end].decode() == b64
    assert b"".join(base64_chunks(path, span, block_size=block)) == audio


def test_the_rest_of_the_document_is_limited(tmp_path):
    big = "x" * 5000
    path = write(tmp_path, json.dumps({"data": {"full_audio": big, "note": "small"}}))
    assert scan_json_file(path, CUT, 200).document["data"]["note"] == "small"
    with pytest.raises(TooLarge):
        scan_json_file(path, [], 200)  # nothing cut: the 5000 characters count


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"data": {"full_audio": "abc}}',
        '{"data": {"full_audio" "abc"}}',
        '{"data": {"full_audio": "abc"}}}',
        '{"data": [{"full_audio": "abc"}]',
    ],
)
def test_broken_json_is_a_value_error(tmp_path, text):
    with pytest.raises(ValueError):
        scan_json_file(write(tmp_path, text), CUT, 10_000)


def test_a_cut_path_holding_no_string_is_simply_not_found(tmp_path):
    path = write(tmp_path, '{"data": {"full_audio": null, "audio_base_64": 12}}')
    scanned = scan_json_file(path, CUT, 10_000)
    assert scanned.spans == {} and scanned.document["data"]["full_audio"] is None


@pytest.mark.parametrize(
    "raw",
    ["QUJD!", "QUJD=QUJD", "Q", "QUJD\\\\", "QUJD\\u00e9", "QUJD\\b", "QUJD\\u00"],
)
def test_what_is_not_base64_is_a_value_error(tmp_path, raw):
    path = write(tmp_path, raw)
    with pytest.raises(ValueError):
        b"".join(base64_chunks(path, Span(0, len(raw)), block_size=3))


async def test_copy_base64_streams_into_a_writer(tmp_path):
    from gateway.storage import LocalDiskStorage

    audio = random.Random(1).randbytes(3 * 1024 * 1024 + 1)
    path = write(tmp_path, b'{"data": {"full_audio": "' + base64.b64encode(audio) + b'"}}')
    span = scan_json_file(path, CUT, 1000).spans[("data", "full_audio")]
    store = LocalDiskStorage(tmp_path / "store")
    writer = store.writer("a/b.mp3")
    assert await copy_base64(path, span, writer) == len(audio)
    await writer.commit()
    assert await store.read("a/b.mp3") == audio
