"""No tracked file points outside the repository: not at the machine's shared notes, not at
an absolute path of the machine it was written on. The facts belong in docs/ with public
sources."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Built from pieces so this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|/" + "work" + r"/")

# Files being rewritten on other branches that still cite the shared notes; each entry
# must disappear once its branch is merged (the second test says so when it is stale).
PENDING: set[str] = set()


def _offenders() -> dict[str, list[str]]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found: dict[str, list[str]] = {}
    for name in files:
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        hits = [
            f"{name}:{n}: {line.strip()}"
            for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
        if hits:
            found[name] = hits
    return found


def test_no_file_points_outside_the_repository() -> None:
    bad = {k: v for k, v in _offenders().items() if k not in PENDING}
    assert not bad, (
        "these lines point outside the repository; put the facts into docs/ with public "
        "sources instead:\n" + "\n".join(line for v in bad.values() for line in v)
    )


def test_pending_list_is_not_stale() -> None:
    offenders = _offenders()
    stale = sorted(name for name in PENDING if name not in offenders)
    assert not stale, f"remove from PENDING in {Path(__file__).name}: {stale}"
