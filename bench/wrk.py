"""wrk as the load generator: a C client, so the client's core is hardly used.

The Python keep-alive client in ``bench/ingest.py`` spends about 0.12 ms of CPU per
request (a third of its core at 3,000 req/s); run back to back with wrk against the same
servers the two report the same latencies within the noise (bench/README.md). wrk
(Debian's package ``wrk``) is the default where installed, one variable less; elsewhere
the benches fall back to the Python client.

Each request is built by a Lua script, so every one can carry its own ids.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"
OK = "2xx/3xx"  # the one success class wrk tells apart


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str) -> dict[str, Any]:
    """wrk's ``--latency`` report as req/s, p50, p99 and max in ms, the responses it
    counted, and the codes (``{"2xx/3xx": n}``, plus ``"non-2xx"`` and ``"socket
    errors"`` when there were any).

    :raises ValueError: when the report lacks the latency distribution (wrk failed).
    """
    found = {q: re.search(rf"^\s+{q}%\s+{_DURATION}\s*$", output, re.MULTILINE) for q in (50, 99)}
    summary = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    latency = re.search(rf"^\s+Latency\s+{_DURATION}\s+{_DURATION}\s+{_DURATION}", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not (found[50] and found[99] and summary and latency and rps):
        raise ValueError("not a wrk --latency report:\n" + output)
    requests = int(summary.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(non_2xx.group(1)) if non_2xx else 0
    # wrk counts a 3xx as a success and reports no codes: say only what it knows.
    codes: dict[Any, int] = {OK: requests - failed} if requests > failed else {}
    if failed:
        codes["non-2xx"] = failed
    if errors and any(int(n) for n in errors.groups()):
        codes["socket errors"] = sum(int(n) for n in errors.groups())
    return {
        "rps": float(rps.group(1)),
        "p50": _ms(*found[50].groups()),
        "p99": _ms(*found[99].groups()),
        "max": _ms(*latency.groups()[4:6]),
        "requests": requests,
        "codes": codes,
    }


def run(url: str, script: str, *, seconds: int, connections: int) -> dict[str, Any]:
    """One wrk run (one thread: the client's core is the other one) of ``script``, for
    whole ``seconds`` (wrk's ``-d`` takes no fractions)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "load.lua"
        path.write_text(script)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(path)]
        done = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise RuntimeError(f"wrk exited with {done.returncode}: {said}")
    return parse(done.stdout)
