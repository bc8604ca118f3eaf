"""The simulator as a user runs it: ``python -m cache_service.eviction.simulate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cache_service.eviction.simulate import render_markdown, run_simulation
from cache_service.eviction.traces import STANDARD_TRACES, standard_traces

REPO = Path(__file__).resolve().parents[3]
SMALL_RUN = ["--requests", "20000", "--objects", "2000", "--sizes", "0.01,0.05,0.1", "--seed", "3"]


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cache_service.eviction.simulate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_prints_one_row_per_trace_and_size():
    result = simulate(*SMALL_RUN)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "| trace | cache size | LRU | S3-FIFO | MIN |"
    rows = [line.split("|")[1].strip() for line in lines[2:]]
    assert sorted(rows) == sorted(name for name in STANDARD_TRACES for _ in range(3))


def test_s3fifo_beats_lru_on_scan_mixed_traces_and_min_beats_both(tmp_path):
    out = tmp_path / "rows.json"
    result = simulate(*SMALL_RUN, "--format", "json", "--out", str(out))

    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == len(STANDARD_TRACES) * 3
    scan_rows = [row for row in rows if row["trace"].endswith("+scans")]
    assert len(scan_rows) == 9
    for row in scan_rows:
        assert row["s3fifo"] > row["lru"], row
    for row in rows:
        assert row["min"] >= max(row["lru"], row["s3fifo"]), row


def test_bad_sizes_are_a_one_line_usage_error():
    result = simulate("--sizes", "0.1,2")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "sizes must be fractions" in result.stderr


def test_same_seed_gives_the_same_traces_and_table():
    assert standard_traces(3000, 300, 5) == standard_traces(3000, 300, 5)
    assert standard_traces(3000, 300, 5) != standard_traces(3000, 300, 6)
    first = run_simulation(3000, 300, [0.1], seed=5, workers=1)
    assert render_markdown(first) == render_markdown(run_simulation(3000, 300, [0.1], seed=5, workers=1))
