"""The benchmark still runs end to end (tiny numbers: this checks it works, not how
fast anything is; figures belong in bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import wrk

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python <script> <args>`` from the project's root, its output kept."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_ingest_bench_runs_and_every_callback_is_accepted():
    result = run_bench(
        "bench/ingest.py",
        "--requests=40",
        "--warmup=8",
        "--connections=4",
        "--rounds=1",
        "--idle-events=2",
        "--server-cpu=-1",
        "--deadline=60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway #1" in result.stdout and "{200: 40}" in result.stdout
    assert "median round: ratio gateway/bare" in result.stdout
    assert "idle queue, 2/2 events" in result.stdout


def test_audio_bench_runs_and_stores_every_delivery():
    result = run_bench(
        "bench/audio.py",
        "--sizes-mb=0.3",
        "--concurrency=1,2",
        "--naive-max-mb=0.3",
        "--deadline=60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway, 0.3 MB x1" in result.stdout and "{200: 2}" in result.stdout
    assert "3/3 stored byte-identical, 0 differ, 0 spool files" in result.stdout
    assert "naive get_json, 0.3 MB x2" in result.stdout
    assert "gateway worst peak growth" in result.stdout


def test_crm_drain_bench_runs_and_logs_every_call_once():
    result = run_bench(
        "bench/crm_drain.py",
        "--calls=12",
        "--limit=5",
        "--window=1",
        "--settle=2",
        "--poll=0.1",
        "--deadline=60",
    )
    assert "engagements created 12/12, jobs succeeded 12" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "429s received 0" in result.stdout


# A tiny personalization run: both load generators take these.
PERSONALIZE_SMALL = (
    "--connections=4",
    "--callers=10",
    "--rounds=1",
    "--slow-requests=4",
    "--deadline-seconds=0.3",
    "--server-cpu=-1",
    "--deadline=60",
)


def test_personalize_bench_runs_and_answers_by_the_deadline():
    result = run_bench(
        "bench/personalize.py",
        "--client=python",
        "--requests=40",
        "--warmup=8",
        *PERSONALIZE_SMALL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway #1" in result.stdout and "{200: 40}" in result.stdout
    assert "59/59" in result.stdout  # every answer's record was written
    assert "median round: gateway p50" in result.stdout
    assert "defaults answered: True; {200: 4}" in result.stdout


def test_reports_bench_runs_and_mails_every_team():
    result = run_bench(
        "bench/reports.py",
        "--teams=8",
        "--calls=800",
        "--recordings=50",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "daily-summary: succeeded" in result.stdout and "mails 8," in result.stdout
    assert "weekly-report: succeeded" in result.stdout
    assert "'expired': 50" in result.stdout and "'announced': 50" in result.stdout


WRK_REPORT = """Running 1s test @ http://127.0.0.1:8000/api/webhooks/elevenlabs/personalize
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.20ms  300.00us    1.02s    90.00%
    Req/Sec    10.00      1.00    20.00     90.00%
  Latency Distribution
     50%  850.00us
     75%    1.00ms
     90%    1.10ms
     99%   12.50ms
  120 requests in 1.00s, 10.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 20
Requests/sec:    119.50
Transfer/sec:     10.00KB
"""


def test_a_wrk_report_reads_as_latencies_in_ms_and_counted_responses():
    assert wrk.parse(WRK_REPORT) == {
        "rps": 119.5,
        "p50": 0.85,
        "p99": 12.5,
        "max": 1020.0,
        "requests": 120,
        "codes": {wrk.OK: 100, "non-2xx": 20, "socket errors": 3},
    }
    clean = WRK_REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 20\n", "")
    assert wrk.parse(clean)["codes"] == {wrk.OK: 120}


def test_a_failed_wrk_run_is_not_read_as_figures():
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        wrk.parse("unable to connect to 127.0.0.1:8000 Connection refused\n")


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed (Debian package wrk)")
def test_personalize_bench_under_wrk_counts_every_record():
    result = run_bench(
        "bench/personalize.py",
        "--client=wrk",
        "--seconds=1",
        "--warmup-seconds=1",
        *PERSONALIZE_SMALL,
    )
    # Exit 0 includes the check that the records written match the answers wrk counted.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 s of wrk" in result.stdout and "gateway #1" in result.stdout
