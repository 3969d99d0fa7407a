"""One multipart-upload part held as the chunks it was written in.

botocore reads a request body more than once (its payload hash, checksums, a retry
rewinds it), so it needs a seekable file; joining the chunks into one ``bytes`` for
that would hold the part twice at the moment of the join, and a ``bytearray`` body is
copied twice inside botocore and aiohttp (measured: 2.3x the part at peak). This file
object reads the chunks where they are.
"""

from __future__ import annotations

import bisect
import io
from typing import Any


class Part:
    """Chunks appended until the part is big enough, then read as a file."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def append(self, chunk: bytes) -> None:
        # A caller may reuse its buffer after write() returns: keep an immutable copy.
        self.chunks.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
        self.size += len(chunk)

    def reader(self) -> PartReader:
        return PartReader(self.chunks)


class PartReader(io.RawIOBase):
    """A seekable, read-only file over a list of ``bytes`` (nothing is copied but the
    bytes each ``read`` returns)."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks = [c for c in chunks if c]
        self._starts: list[int] = []
        position = 0
        for chunk in self._chunks:
            self._starts.append(position)
            position += len(chunk)
        self._size = position
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            chunk = self._chunks[index]
            offset = self._pos - self._starts[index]
            take = min(len(chunk) - offset, len(view) - done)
            view[done : done + take] = chunk[offset : offset + take]
            done += take
            self._pos += take
        return done
