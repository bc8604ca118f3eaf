"""Writes ``docs/benchmarks.md`` from the sections of one benchmark run: nothing in it is typed by hand."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.section import Section
from infra.s3_model import DEFAULT_BANDWIDTH_MBPS, DEFAULT_LATENCY_MS

ROOT = Path(__file__).resolve().parent.parent
IMG_DIR = ROOT / "docs" / "img"
"""Where the plots go; ``docs/benchmarks.md`` links them as ``img/<name>.png``."""
WORK_ROOT = ROOT / ".local" / "bench"
"""Scratch space of the benchmarks (data sets, logs of the processes they start); one folder per section."""


@dataclass(frozen=True)
class Goal:
    """What one target in ``latest.json`` asks of its measured value."""

    description: str
    op: str  # "<=", ">=" or "is"
    bound: float | bool

    def met(self, value: object) -> bool | None:
        """True or False, or None when there is no measured value to judge."""
        if value is None:
            return None
        if self.op == "is":
            return value is self.bound
        number = float(value)  # type: ignore[arg-type]
        return number <= self.bound if self.op == "<=" else number >= self.bound


# The goals the issue sets for the benchmarks: goals to measure against, not assertions in tests.
GOALS: dict[str, Goal] = {
    "warm_range_read_median_ms": Goal("warm 64 KiB range read, median latency (ms)", "<=", 0.3),
    "warm_range_read_p99_ms": Goal("warm 64 KiB range read, p99 latency (ms)", "<=", 1.0),
    "warm_64k_rps_vs_nginx": Goal("warm 64 KiB requests/s at 32 connections, cache / nginx", ">=", 0.5),
    "sequential_vs_nginx": Goal("warm sequential read GB/s, cache / nginx", ">=", 0.7),
    "parquet_lookup_speedup_vs_s3": Goal(
        "Parquet point lookup over WebHDFS, S3 model time / warm cache time", ">=", 50.0
    ),
    "parquet_lookup_speedup_s3_api": Goal(
        "Parquet point lookup over the S3 API, S3 model time / warm cache time", ">=", 50.0
    ),
    "parquet_lookup_fraction_of_bound_webhdfs": Goal(
        "Parquet point lookup over WebHDFS, speedup / in-memory speedup", ">=", 0.8
    ),
    "parquet_lookup_fraction_of_bound_s3_api": Goal(
        "Parquet point lookup over the S3 API, speedup / in-memory speedup", ">=", 0.8
    ),
    "spark_warm_speedup_vs_passthrough": Goal("Spark scan, pass-through time / warm cache time", ">=", 3.0),
    "spark_cold_vs_passthrough": Goal("Spark scan, cold cache time / pass-through time", "<=", 1.15),
    "eviction_s3fifo_beats_lru_on_scans": Goal("S3-FIFO beats LRU on every scan-mixed trace", "is", True),
    "warmup_vs_boto3_one_worker": Goal("warmup, boto3 download_file in a loop / cache load job, 1 worker", ">=", 1.0),
    "warmup_vs_boto3_three_workers": Goal(
        "warmup, boto3 download_file in a loop / cache load job, 3-worker cluster", ">=", 2.5
    ),
    "ring_max_over_mean_load": Goal("cluster ring, busiest worker's blocks / mean, 3 to 64 workers", "<=", 1.10),
    "ring_moved_vs_ideal": Goal("cluster ring, blocks moved on a join or leave, distance from 1/N", "<=", 0.10),
    "cluster_reread_after_drain_s3_fraction": Goal(
        "cluster, re-reading the warm data set after a drain: fraction read from S3", "<=", 0.05
    ),
    "cluster_reread_after_join_s3_fraction": Goal(
        "cluster, re-reading the warm data set after a join: fraction read from S3", "<=", 0.05
    ),
    "cluster_two_workers_64k_rps_vs_nginx": Goal(
        "warm 64 KiB requests/s, 2 workers (one per core) / nginx worker_processes auto", ">=", 0.5
    ),
    "alert_notifications_reduction": Goal(
        "fleet day: notifications with the first-generation configuration / with the generated one", ">=", 100.0
    ),
    "alert_incidents_paged": Goal("fleet day: injected incidents the generated configuration paged (of 5)", ">=", 5),
    "alert_churn_pages": Goal("fleet day: pages for churn alone with the generated configuration", "<=", 0),
}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``."""
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def targets_table(targets: dict[str, object]) -> str:
    """The goals next to the measured values, one row per target."""
    rows = []
    for key, goal in GOALS.items():
        value = targets.get(key)
        met = goal.met(value)
        shown = "not measured" if value is None else (str(value).lower() if isinstance(value, bool) else f"{value:g}")
        bound = str(goal.bound).lower() if isinstance(goal.bound, bool) else f"{goal.op} {goal.bound:g}"
        rows.append([goal.description, f"`{key}`", bound, shown, {True: "met", False: "**missed**", None: "-"}[met]])
    return markdown_table(["target", "key in latest.json", "goal", "measured", ""], rows, "llrrl")


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024**2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "os": platform.platform(),
        "commit": commit or "unknown",
    }


def s3_model_text() -> str:
    """How "S3" figures are made: the proxy, its two parameters, and where they come from."""
    return (
        'The S3 emulator answers on loopback in microseconds, so "S3 direct" and cold-cache figures go through '
        "`infra/s3_model.py`, a proxy in front of it that holds every response's headers until "
        f"**{DEFAULT_LATENCY_MS:g} ms** after the request arrived (first-byte latency; the emulator's own time counts "
        f"toward it) and paces each connection's response bytes to **{DEFAULT_BANDWIDTH_MBPS:g} MB/s** with a token "
        "bucket. Both are flags: `python -m infra.s3_model --upstream URL --port P --latency-ms "
        f"{DEFAULT_LATENCY_MS:g} --bandwidth-mbps {DEFAULT_BANDWIDTH_MBPS:g}`. Both defaults come from AWS's "
        "whitepaper *Best Practices Design Patterns: Optimizing Amazon S3 Performance*: its section on timeouts and "
        "retries puts the median latency of small (< 512 KB) requests in the tens of milliseconds, and its section "
        "on horizontal scaling advises one concurrent request per 85-90 MB/s of throughput wanted "
        "(https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/). A model this "
        "mild favours S3: from another region, or for the long tail, a real S3 is slower."
    )


def render(sections: Sequence[Section], when: str, full: bool, host: dict[str, str]) -> str:
    """The whole benchmarks page."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench`{' with BENCH_FULL=1' if full else ''} on {when} (commit {host['commit']}). "
        "Do not edit by hand: run `make bench` again. Raw figures: `bench/results/latest.json`.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in host.items() if k != "commit") + ".",
        "",
        "## Targets",
        "",
        "Goals for the benchmarks, from the issue that asked for them; the measured values are those of the sections "
        "below (and `targets` in `bench/results/latest.json`).",
        "",
        targets_table({k: v for s in sections for k, v in s.targets.items()}).rstrip(),
        "",
        "## The S3 latency model",
        "",
        s3_model_text(),
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", f"Reproduce: `{section.command}`", "", section.markdown.rstrip(), ""]
    return "\n".join(lines)
