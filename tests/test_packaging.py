"""``pip install .`` gives a working gateway: the wheel carries the core, every built-in
plugin with its entry point, the hookspecs module and the committed migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("renchi_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "hookspecs.py" in names
    assert "gateway/py.typed" in names
    migrations = {n for n in names if "/migrations/" in n and n.endswith(".py")}
    on_disk = {str(p.relative_to(ROOT)) for p in ROOT.glob("gateway/**/migrations/*.py")} | {
        str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/**/migrations/*.py")
    }
    assert on_disk <= migrations
    # The console's templates and static files (package-data), every one on disk.
    console = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "plugins" / "console").glob("*/**/*")
        if p.is_file() and p.suffix in {".html", ".css", ".js"}
    }
    assert console and console <= names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "gateway = gateway.cli:main" in text
    for plugin in ("admin", "twilio_voice", "elevenlabs", "google_calendar", "hubspot",
                   "salesforce", "microsoft_teams", "jwt_auth", "cron", "console"):  # fmt: skip
        assert f"{plugin} = plugins." in text
