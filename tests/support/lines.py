"""A log file that several processes write to (the worker and scale-out proofs)."""

from __future__ import annotations

import os


def append_line(path: str, line: str) -> None:
    """One ``write`` on an O_APPEND file: lines from several processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
