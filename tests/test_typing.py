"""mypy passes over the core, the built-in plugins and the hook specification, with the
configuration committed in pyproject.toml (``[tool.mypy]``): the types a plugin author
reads in docs/typing.md are checked, not only written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_passes_with_the_committed_configuration() -> None:
    # No arguments: the files and every option come from pyproject.toml, exactly as a
    # developer runs it. The incremental cache (.mypy_cache, ignored by git) makes a
    # second run take a few seconds instead of a minute.
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy failed:\n{output}"
    assert "Success: no issues found" in output, output
