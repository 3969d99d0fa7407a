"""CI runs exactly the README's test command, which installs the example plugin and runs
its tests with the project's; pytest's "no tests collected" (exit 5) fails CI."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_command() -> str:
    section = (ROOT / "README.md").read_text().split("## Run the tests", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_command() -> None:
    command = readme_command()
    assert "-e examples/acme_crm" in command
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in lines


def test_the_example_tests_are_collected() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "examples/acme_crm/tests" in config["tool"]["pytest"]["ini_options"]["testpaths"]


def test_no_tests_collected_fails_ci(tmp_path: Path) -> None:
    script = (ROOT / ".ci" / "run").read_text()
    after = script.split(readme_command(), 1)[1]  # what CI does with pytest's exit code
    for code, expected in ((5, 1), (0, 0), (1, 1)):
        stub = tmp_path / "ci"
        stub.write_text(f"#!/usr/bin/env bash\nset -uo pipefail\n(exit {code})" + after)
        done = subprocess.run(["bash", str(stub)], capture_output=True, text=True)
        assert done.returncode == expected, (code, done.stderr)
