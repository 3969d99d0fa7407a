"""Large string values in a JSON file, without loading them.

A webhook that carries a recording as one base64 string (tens of megabytes) in an
otherwise small JSON document is read in two passes over the spooled file:

1. :func:`scan_json_file` walks the document in blocks, tracking just enough structure
   (objects, arrays, keys) to know the path of every string. The strings at the paths
   asked for are *cut*: their byte span in the file is recorded and the document is
   rebuilt without them (each becomes ``""``), small enough to parse with ``json``,
   which also validates it.
2. :func:`base64_chunks` decodes one cut span block by block: JSON escapes (``\\/``,
   ``\\n``, ``\\uXXXX``) and whitespace are removed, then whole base64 quanta (multiples
   of four characters) are decoded.

Neither pass holds more than a block or two of the string; both are plain functions to
run in a worker thread. :func:`copy_base64` drives the second into a blob writer.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import re
from collections.abc import Collection, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.storage import BlobWriter

# Small enough that a few requests decoding at once stay within a few MB.
BLOCK = 256 * 1024
Path_ = tuple[str, ...]

_STRUCTURE = re.compile(rb'["{}\[\]:,]')
_ESCAPE = re.compile(rb"\\(?:u([0-9A-Fa-f]{4})|([^u]))", re.S)
_DROPPED_ESCAPES = {b"n", b"r", b"t"}  # line breaks some encoders put into base64
_WHITESPACE = b" \t\r\n"


def _backslashes_before(block: bytes, at: int, start: int) -> int:
    """How many backslashes directly precede ``block[at]``, looking back to ``start``."""
    i = at
    while i > start and block[i - 1] == 0x5C:
        i -= 1
    return at - i


class TooLarge(ValueError):
    """The document without its cut strings is larger than allowed."""


@dataclass(frozen=True)
class Span:
    """A string value's raw bytes in the file: from after its opening quote to its
    closing quote (escapes not yet decoded)."""

    start: int
    end: int


@dataclass
class Scanned:
    document: Any  # the parsed JSON, every cut string replaced by ""
    spans: dict[Path_, Span] = field(default_factory=dict)


@dataclass
class _Frame:
    is_object: bool
    key: str | None = None
    want_key: bool = True


class _Scanner:
    def __init__(self, cut: Collection[Path_], max_rest: int) -> None:
        self.cut = set(cut)
        self.max_rest = max_rest
        self.rest = bytearray()
        self.stack: list[_Frame] = []
        self.spans: dict[Path_, Span] = {}
        self.mode = "out"  # out | key | string | cut
        self.backslashes = 0  # backslashes ending the previous block, inside a string
        self.key = bytearray()
        self.cut_path: Path_ = ()
        self.cut_start = 0

    def _path(self) -> tuple[str | None, ...]:
        return tuple(frame.key if frame.is_object else None for frame in self.stack)

    def _keep(self, data: bytes | memoryview) -> None:
        self.rest += data
        if len(self.rest) > self.max_rest:
            raise TooLarge("document too large")

    def feed(self, block: bytes, offset: int) -> None:
        pos, end = 0, len(block)
        while pos < end:
            if self.mode == "out":
                match = _STRUCTURE.search(block, pos)
                if match is None:
                    self._keep(block[pos:])
                    return
                at = match.start()
                self._keep(block[pos : at + 1])
                self._structure(block[at : at + 1], offset + at + 1)
                pos = at + 1
            else:
                pos = self._string(block, pos, offset)

    def _structure(self, char: bytes, after: int) -> None:
        top = self.stack[-1] if self.stack else None
        if char == b'"':
            if top is not None and top.is_object and top.want_key:
                self.mode, self.key, self.backslashes = "key", bytearray(), 0
                return
            path = self._path()
            if path in self.cut and path not in self.spans:
                self.mode, self.cut_path, self.cut_start = "cut", path, after  # type: ignore[assignment]
            else:
                self.mode = "string"
            self.backslashes = 0
        elif char == b"{":
            self.stack.append(_Frame(is_object=True))
        elif char == b"[":
            self.stack.append(_Frame(is_object=False))
        elif char in b"}]":
            if not self.stack:
                raise ValueError("unbalanced JSON")
            self.stack.pop()
        elif char == b"," and top is not None and top.is_object:
            top.want_key, top.key = True, None

    def _string(self, block: bytes, pos: int, offset: int) -> int:
        """Consume string bytes from ``pos``; returns where to go on. A quote ends the
        string unless an odd run of backslashes precedes it (a run may have started in
        the previous block: ``self.backslashes``). Only quotes are searched for, so a
        base64 string full of ``\\/`` escapes costs no more than a plain one."""
        start = pos
        while True:
            at = block.find(b'"', pos)
            if at < 0:
                self._string_bytes(block, start, len(block))
                run = _backslashes_before(block, len(block), start)
                self.backslashes = run + (self.backslashes if run == len(block) else 0)
                return len(block)
            run = _backslashes_before(block, at, start)
            if run == at:  # the run reaches the start of the block
                run += self.backslashes
            if run % 2:  # an escaped quote, part of the string
                pos = at + 1
                continue
            self._string_bytes(block, start, at + 1)
            self._string_end(offset + at)
            return at + 1

    def _string_bytes(self, block: bytes, start: int, stop: int) -> None:
        if self.mode == "key":
            self.key += block[start:stop]
            if len(self.key) > 4096:
                raise ValueError("JSON key too long")
        elif self.mode == "string":
            self._keep(memoryview(block)[start:stop])
        # "cut": nothing is kept

    def _string_end(self, quote_at: int) -> None:
        if self.mode == "key":
            raw = bytes(self.key)  # ends with the closing quote
            self._keep(raw)
            top = self.stack[-1]
            top.key, top.want_key = json.loads(b'"' + raw), False
        elif self.mode == "cut":
            self.spans[self.cut_path] = Span(self.cut_start, quote_at)
            self._keep(b'"')
        self.mode = "out"


def scan_json_file(
    path: Path, cut: Collection[Path_], max_rest: int, block_size: int = BLOCK
) -> Scanned:
    """Parse the JSON document in ``path`` with the string values at the ``cut`` paths
    (tuples of object keys, e.g. ``("data", "audio")``) left out and located.

    :raises TooLarge: the rest of the document is over ``max_rest`` bytes.
    :raises ValueError: the document is not JSON (``json.JSONDecodeError`` included).
    """
    scanner = _Scanner(cut, max_rest)
    offset = 0
    with Path(path).open("rb") as fh:
        while block := fh.read(block_size):
            scanner.feed(block, offset)
            offset += len(block)
    if scanner.mode != "out":
        raise ValueError("unterminated JSON string")
    document = json.loads(bytes(scanner.rest))
    for cut_path in scanner.spans:  # the scanner's idea of the structure, confirmed
        node = document
        for key in cut_path:
            node = node[key] if isinstance(node, dict) else None
        if node != "":
            raise ValueError("JSON structure not understood")
    return Scanned(document=document, spans=scanner.spans)


def _unescape(match: re.Match[bytes]) -> bytes:
    code, char = match.group(1), match.group(2)
    if code is not None:
        value = int(code, 16)
        if value > 0x7F:
            raise ValueError("not base64")
        return b"" if bytes([value]) in _WHITESPACE else bytes([value])
    if char == b"/":
        return b"/"
    if char in _DROPPED_ESCAPES:
        return b""
    raise ValueError("not base64")


def _split_escape(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut before an escape sequence that the next block completes."""
    last = data.rfind(b"\\", max(0, len(data) - 6))
    if last < 0:
        return data, b""
    tail = data[last:]
    complete = len(tail) >= 2 and (tail[1:2] != b"u" or len(tail) >= 6)
    return (data, b"") if complete else (data[:last], tail)


def base64_chunks(path: Path, span: Span, block_size: int = BLOCK) -> Generator[bytes]:
    """The decoded bytes of the base64 string at ``span`` of ``path``, a block at a time.

    :raises ValueError: the string is not base64 (``binascii.Error`` included).
    """
    carry = pending = b""
    padded = False
    remaining = span.end - span.start
    with Path(path).open("rb") as fh:
        fh.seek(span.start)
        while remaining > 0:
            raw = fh.read(min(block_size, remaining))
            if not raw:
                raise ValueError("file shorter than the span")
            remaining -= len(raw)
            data = carry + raw
            if b"\\" in data:
                data, carry = _split_escape(data) if remaining else (data, b"")
                data = _ESCAPE.sub(_unescape, data)
                if b"\\" in data:
                    raise ValueError("not base64")
            pending += data.translate(None, _WHITESPACE)
            whole = len(pending) - len(pending) % 4
            if whole:
                if padded:  # '=' ends base64: nothing may follow it
                    raise ValueError("data after base64 padding")
                yield binascii.a2b_base64(pending[:whole], strict_mode=True)
                padded = pending[whole - 1] == 0x3D
                pending = pending[whole:]
    if pending:
        if padded:
            raise ValueError("data after base64 padding")
        # Unpadded tail (some encoders omit the '='): one char alone cannot be a byte.
        if len(pending) == 1:
            raise ValueError("truncated base64")
        yield binascii.a2b_base64(pending + b"=" * (-len(pending) % 4), strict_mode=True)


async def copy_base64(path: Path, span: Span, writer: BlobWriter) -> int:
    """Decode the base64 string at ``span`` into ``writer`` (neither committed nor
    aborted here); the decoding runs in a worker thread a block at a time. Returns the
    number of bytes written.

    :raises ValueError: the string is not base64.
    """
    chunks = base64_chunks(path, span)
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await writer.write(chunk)
    finally:
        chunks.close()
    return writer.size
