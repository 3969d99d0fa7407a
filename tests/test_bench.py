"""The benchmark still runs end to end (tiny numbers: this checks it works, not how
fast anything is; figures belong in bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ingest_bench_runs_and_every_callback_is_accepted():
    result = subprocess.run(
        [
            sys.executable,
            "bench/ingest.py",
            "--requests=40",
            "--warmup=8",
            "--connections=4",
            "--rounds=1",
            "--idle-events=2",
            "--server-cpu=-1",
            "--deadline=60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway #1" in result.stdout and "{200: 40}" in result.stdout
    assert "median round: ratio gateway/bare" in result.stdout
    assert "idle queue, 2/2 events" in result.stdout


def test_audio_bench_runs_and_stores_every_delivery():
    result = subprocess.run(
        [
            sys.executable,
            "bench/audio.py",
            "--sizes-mb=0.3",
            "--concurrency=1,2",
            "--naive-max-mb=0.3",
            "--deadline=60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway, 0.3 MB x1" in result.stdout and "{200: 2}" in result.stdout
    assert "3/3 stored byte-identical, 0 differ, 0 spool files" in result.stdout
    assert "naive get_json, 0.3 MB x2" in result.stdout
    assert "gateway worst peak growth" in result.stdout


def test_crm_drain_bench_runs_and_logs_every_call_once():
    result = subprocess.run(
        [
            sys.executable,
            "bench/crm_drain.py",
            "--calls=12",
            "--limit=5",
            "--window=1",
            "--settle=2",
            "--poll=0.1",
            "--deadline=60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "engagements created 12/12, jobs succeeded 12" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "429s received 0" in result.stdout


def test_personalize_bench_runs_and_answers_by_the_deadline():
    result = subprocess.run(
        [
            sys.executable,
            "bench/personalize.py",
            "--requests=40",
            "--warmup=8",
            "--connections=4",
            "--callers=10",
            "--rounds=1",
            "--slow-requests=4",
            "--deadline-seconds=0.3",
            "--server-cpu=-1",
            "--deadline=60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gateway #1" in result.stdout and "{200: 40}" in result.stdout
    assert "59/59" in result.stdout  # every answer's record was written
    assert "median round: gateway p50" in result.stdout
    assert "defaults answered: True; {200: 4}" in result.stdout


def test_reports_bench_runs_and_mails_every_team():
    result = subprocess.run(
        [
            sys.executable,
            "bench/reports.py",
            "--teams=8",
            "--calls=800",
            "--recordings=50",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "daily-summary: succeeded" in result.stdout and "mails 8," in result.stdout
    assert "weekly-report: succeeded" in result.stdout
    assert "'expired': 50" in result.stdout and "'announced': 50" in result.stdout
