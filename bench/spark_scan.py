"""The Spark scan-and-aggregate job (``spark_jobs/scan_events.py``) through the cache: pass-through, cold and warm.

A table of game events (``event_files``: the columns the job reads, and a few it skips) is written straight into
the S3 emulator; every cache reads it through the S3 latency model. One ``spark-submit --master local[2]``
application (``driver``, this module run as a PySpark script) runs the job's ``scan_events()`` once to warm the JVM,
then three times per repetition:

- **pass-through**: a new worker with ``[store] caching = false``: the same WebHDFS protocol, every read streamed
  from S3, nothing kept. The baseline: what Spark would see reading S3 through a thin gateway;
- **cold**: a new caching worker, empty;
- **warm**: the same worker again, holding what the cold run read.

Repetitions alternate the order of pass-through and cold/warm. The figure is the time of ``scan_events()`` (list,
read, aggregate); ratios are taken within each repetition, then their median.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

from bench import plots
from bench.measured import fresh_work_dir, measured_section
from bench.report import IMG_DIR, markdown_table
from bench.section import Section
from infra.cache_process import REPO_ROOT, CacheProcess
from infra.game_events import game_event_files as event_files
from infra.s3_emulator import S3Emulator
from infra.s3_model import S3Model
from infra.service_process import log_tail

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "lake"
PREFIX = "warehouse/events"
MODES = ("pass-through", "cold", "warm")
SPARK_TIMEOUT = 1800.0
# The emulator rereads a whole object for every ranged GET, so its cost grows with the object: files of about
# 8 MiB keep it well below the modelled first-byte latency.
FILE_BYTES = 8 * 2**20
BYTES_PER_EVENT = 12.5  # Snappy Parquet of EVENT_SCHEMA, measured: sizes the file count
DAYS = 4
# Straight to loopback: a proxy configured in the environment must not sit between us and the worker.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# The table: the demo's game events (one generator for both), as the scan job expects them.


def parquet_bytes(table: pa.Table, row_group_rows: int | None = None) -> bytes:
    """``table`` as one Snappy Parquet file."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy", row_group_size=row_group_rows)
    return buffer.getvalue()


def upload(client: S3Client, bucket: str, prefix: str, files: Iterator[tuple[str, pa.Table]]) -> tuple[int, int, int]:
    """Write each file straight into S3 under ``prefix``; returns (files, rows, bytes)."""
    count = rows = size = 0
    for relative, table in files:
        body = parquet_bytes(table)
        client.put_object(Bucket=bucket, Key=f"{prefix}/{relative}", Body=body)
        count, rows, size = count + 1, rows + table.num_rows, size + len(body)
    return count, rows, size


# --- the runs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The table's size in events and how many repetitions of the three runs."""

    events: int
    repetitions: int
    size: str  # "smoke", "quick" or "full"

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> Plan:
        """Smoke: 200k events, one repetition. Quick: 86M events (about 1 GiB), 3. Full: 344M (about 4 GiB), 3."""
        if smoke:
            return cls(events=200_000, repetitions=1, size="smoke")
        if full:
            return cls(events=344_000_000, repetitions=3, size="full")
        return cls(events=86_000_000, repetitions=3, size="quick")

    @property
    def files_per_day(self) -> int:
        """Files per daily partition, for files of about ``FILE_BYTES``."""
        return max(1, math.ceil(self.events * BYTES_PER_EVENT / FILE_BYTES / DAYS))


@dataclass(frozen=True)
class ScanRun:
    """One scan: the job's time, the CPU it took, and what it cost the worker that served it."""

    mode: str
    repetition: int
    scan_seconds: float
    spark_cpu_seconds: float
    s3_bytes_read: int
    served_memory: int
    served_disk: int
    page_hits: int
    page_misses: int
    open_seconds: float
    cache_cpu_seconds: float
    result: dict[str, Any]


def _cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of process ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counters(webhdfs_url: str) -> dict[str, float]:
    """The worker's data-path counters now, and the seconds it has spent answering OPEN (a histogram's sum)."""
    with _DIRECT.open(f"{webhdfs_url}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    wanted = {
        "lakecache_s3_bytes_read_total": "s3_bytes_read",
        "lakecache_page_misses_total": "page_misses",
        "lakecache_page_hits_total": "page_hits",
    }
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in wanted:
                name = wanted[sample.name]
            elif sample.name == "lakecache_bytes_served_total":
                name = f"served_{sample.labels.get('tier', '')}"
            elif sample.name == "lakecache_request_seconds_sum" and sample.labels.get("op") == "OPEN":
                name = "open_seconds"
            else:
                continue
            found[name] = found.get(name, 0.0) + sample.value
    return found


@dataclass(frozen=True)
class ScanTarget:
    """What the driver scans for one run, and where it reads the serving worker's counters."""

    mode: str
    repetition: int
    table_uri: str
    webhdfs_url: str
    pid: int
    last_use: bool  # the worker serves no later run: the driver stops it, so its memory goes back


def driver(argv: list[str]) -> int:
    """Inside ``spark-submit``: one warm-up scan, then each run of the plan file ``argv[0]``; results to ``argv[1]``.

    One JVM for every run: start-up and JIT compilation are paid once, in the warm-up, not in each figure. The scan
    is ``spark_jobs.scan_events.scan_events``, the job's own code.
    """
    from pyspark.sql import SparkSession

    from spark_jobs.scan_events import scan_events

    plan = json.loads(Path(argv[0]).read_text())
    spark = (
        SparkSession.builder.appName("lakecache-bench-scan")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")  # the job's default
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    jvm = os.getppid()  # spark-submit's JVM runs this Python driver; a DataFrame scan needs no Python workers
    runs = []
    try:
        scan_events(spark, plan["warmup"])
        for target in (ScanTarget(**t) for t in plan["runs"]):
            before, cache_cpu, spark_cpu = _counters(target.webhdfs_url), _cpu_seconds(target.pid), _cpu_seconds(jvm)
            started = time.monotonic()
            result = scan_events(spark, target.table_uri)
            seconds = time.monotonic() - started
            after = _counters(target.webhdfs_url)
            delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            runs.append(
                ScanRun(
                    mode=target.mode,
                    repetition=target.repetition,
                    scan_seconds=seconds,
                    spark_cpu_seconds=_cpu_seconds(jvm) - spark_cpu,
                    s3_bytes_read=int(delta.get("s3_bytes_read", 0)),
                    served_memory=int(delta.get("served_memory", 0)),
                    served_disk=int(delta.get("served_disk", 0)),
                    page_hits=int(delta.get("page_hits", 0)),
                    page_misses=int(delta.get("page_misses", 0)),
                    open_seconds=delta.get("open_seconds", 0.0),
                    cache_cpu_seconds=_cpu_seconds(target.pid) - cache_cpu,
                    result={k: result[k] for k in ("rows", "distinct_players", "revenue", "groups")},
                )
            )
            if target.last_use:
                os.kill(target.pid, signal.SIGTERM)
    finally:
        spark.stop()
    Path(argv[1]).write_text(json.dumps([asdict(r) for r in runs]))
    return 0


def spark_submit(script: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """Command line and environment of ``spark-submit --master local[2]`` for PySpark script ``script``.

    pyspark's wheel puts ``spark-submit`` beside this Python; the driver runs this Python too, on loopback, with
    the checkout importable.
    """
    argv = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        "--driver-memory",
        "1g",
        "--conf",
        "spark.ui.enabled=false",
        str(script),
        *args,
    ]
    no_proxy = ",".join(p for p in (os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": python_path,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }
    return argv, env


def _worker(work: Path, name: str, s3_endpoint: str, *, caching: bool, table_bytes: int) -> CacheProcess:
    return CacheProcess(
        work / name,
        s3_endpoint=s3_endpoint,
        mounts={"/warehouse": f"s3://{BUCKET}/warehouse"},
        # Warm means in memory, at every size: room for the whole table. Each worker is stopped after its last
        # run, so one at a time holds it.
        memory_capacity=f"{max(2048, table_bytes * 5 // 4 // 2**20)}MiB",
        disk_capacity="8GiB",
        # Metadata is trusted for the whole benchmark: "warm" means data and file status; every worker starts
        # with neither, so pass-through and cold pay the same listing and status requests.
        overrides={"store": {"caching": caching}, "metadata": {"sync_interval": "1h"}},
    )


def _schedule(plan: Plan, workers: dict[str, CacheProcess]) -> list[ScanTarget]:
    """Pass-through, cold, warm per repetition; odd repetitions run pass-through last."""
    targets = []
    for repetition in range(plan.repetitions):
        steps = [("pass-through", f"pass-through-{repetition}"), ("cold", f"cache-{repetition}")]
        steps.append(("warm", f"cache-{repetition}"))
        if repetition % 2 == 1:
            steps = [*steps[1:], steps[0]]
        for mode, name in steps:
            worker = workers[name]
            targets.append(
                ScanTarget(
                    mode,
                    repetition,
                    f"{worker.webhdfs_uri}/{PREFIX}",
                    worker.webhdfs_url,
                    worker.pid or 0,
                    last_use=mode != "cold",
                )
            )
    return targets


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Scan in the three modes, ``repetitions`` times, in one Spark application; returns the section."""
    plan = Plan.choose(full, smoke)
    work = fresh_work_dir("spark_scan", work_dir)
    with S3Emulator(work, buckets=[BUCKET]) as s3, S3Model(s3.endpoint_url, work) as model:
        files, rows, size = upload(
            s3.client(), BUCKET, PREFIX, event_files(plan.events, days=DAYS, files_per_day=plan.files_per_day)
        )
        # Every worker is fresh for its runs, so all start now: the Spark application runs them back to back.
        workers = {"warm-up": _worker(work, "warm-up", model.url, caching=True, table_bytes=size)}
        for repetition in range(plan.repetitions):
            workers[f"pass-through-{repetition}"] = _worker(
                work, f"pass-through-{repetition}", model.url, caching=False, table_bytes=size
            )
            workers[f"cache-{repetition}"] = _worker(
                work, f"cache-{repetition}", model.url, caching=True, table_bytes=size
            )
        try:
            for worker in workers.values():
                worker.start()
            # The warm-up reads one day: enough to compile the scan's code paths, a quarter of the time.
            warmup = f"{workers['warm-up'].webhdfs_uri}/{PREFIX}/dt=2026-11-01"
            plan_file, output = work / "driver-plan.json", work / "driver-runs.json"
            schedule = [asdict(t) for t in _schedule(plan, workers)]
            plan_file.write_text(json.dumps({"warmup": warmup, "runs": schedule}))
            argv, env = spark_submit(Path(__file__).resolve(), "--driver", str(plan_file), str(output))
            log_path = work / "spark.log"
            with log_path.open("wb") as log:
                done = subprocess.run(
                    argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=SPARK_TIMEOUT
                )
            if done.returncode != 0 or not output.exists():
                raise RuntimeError(f"spark-submit exited with {done.returncode}:\n{log_tail(log_path, 25)}")
        finally:
            for worker in workers.values():
                worker.stop()
            for worker in workers.values():
                shutil.rmtree(worker.data_dir, ignore_errors=True)
    runs = [ScanRun(**r) for r in json.loads(output.read_text())]
    answers = {json.dumps(r.result, sort_keys=True) for r in runs}
    if len(answers) != 1:
        raise RuntimeError("the runs disagree on the aggregate: some path served different bytes")
    return _section(plan, files, rows, size, runs, model, full=full, img_dir=img_dir)


def _section(
    plan: Plan,
    files: int,
    rows: int,
    size: int,
    runs: list[ScanRun],
    model: S3Model,
    *,
    full: bool,
    img_dir: Path,
) -> Section:
    by_mode = {mode: [r for r in runs if r.mode == mode] for mode in MODES}
    seconds = {mode: [r.scan_seconds for r in by_mode[mode]] for mode in MODES}
    per_rep: dict[int, dict[str, float]] = {}
    for r in runs:
        per_rep.setdefault(r.repetition, {})[r.mode] = r.scan_seconds
    warm_speedup = statistics.median(p["pass-through"] / p["warm"] for p in per_rep.values())
    # However fast the cache, a warm scan cannot take less than its own CPU time spread over every core.
    cores = os.cpu_count() or 1
    bound = statistics.median(
        r.scan_seconds / (w.spark_cpu_seconds / cores)
        for r in by_mode["pass-through"]
        for w in by_mode["warm"]
        if w.repetition == r.repetition
    )
    cold_ratio = statistics.median(p["cold"] / p["pass-through"] for p in per_rep.values())
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "table": {"files": files, "rows": rows, "bytes": size},
        "s3_model": {"latency_ms": model.latency_ms, "bandwidth_mb_per_s": model.bandwidth_mbps},
        "scan_seconds": seconds,
        "warm_speedup_per_repetition": [p["pass-through"] / p["warm"] for p in per_rep.values()],
        "cold_ratio_per_repetition": [p["cold"] / p["pass-through"] for p in per_rep.values()],
        "warm_speedup_bound": bound,
        "runs": [asdict(r) for r in runs],
    }
    image = plots.spark_scan(results, img_dir / "spark_scan.png")

    def median(mode: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in by_mode[mode]))

    table_rows = [
        [
            mode,
            f"{median(mode, 'scan_seconds'):.1f}",
            f"{median(mode, 'spark_cpu_seconds'):.1f}",
            f"{statistics.median(r.spark_cpu_seconds / r.scan_seconds for r in by_mode[mode]):.2f}",
            f"{median(mode, 's3_bytes_read') / 2**20:,.1f}",
            f"{(median(mode, 'served_memory') + median(mode, 'served_disk')) / 2**20:,.1f}",
            f"{median(mode, 'open_seconds'):.2f}",
            f"{median(mode, 'cache_cpu_seconds'):.2f}",
        ]
        for mode in MODES
    ]
    text = (
        "`spark_jobs/scan_events.py` (one aggregate by platform and event type: events, revenue, and players by HLL "
        f"sketch) over {rows:,} game events in {files} Snappy Parquet files ({size / 2**20:,.0f} MiB), "
        "read over `webhdfs://` by Spark `local[2]`: one `spark-submit` application runs a warm-up scan (one day, "
        "discarded: JVM start-up and JIT compilation) and then every run, each through the worker of its mode. "
        "Every worker reads S3 through the latency model "
        f"({model.latency_ms:g} ms to first byte, {model.bandwidth_mbps:g} MB/s per connection) and starts empty, "
        "with a memory tier that holds the whole table (each worker stops after its last run, so one holds it at a "
        "time) and file status trusted for the whole run. "
        f"Repetitions of pass-through, cold, warm: {plan.repetitions}; medians over repetitions. "
        "*scan s* is the time of the job's `scan_events()` (list, read, aggregate); "
        "*Spark CPU s* the JVM's CPU time during it, and *cores busy* their ratio (this machine has 2 cores; "
        "other tenants share them); *cache OPEN s* is the time the worker spent answering OPEN requests (summed "
        "over concurrent requests); *cache CPU s* the worker process's CPU time during the run.\n\n"
        + markdown_table(
            [
                "mode",
                "scan s",
                "Spark CPU s",
                "cores busy",
                "MiB read from S3",
                "MiB served from cache",
                "cache OPEN s",
                "cache CPU s",
            ],
            table_rows,
            "lrrrrrrr",
        )
        + f"\nWarm speedup over pass-through: **{warm_speedup:.2f}x**; cold over pass-through: "
        f"**{cold_ratio:.2f}x** (medians of per-repetition ratios). The most any cache could give this job here: "
        f"{bound:.2f}x, pass-through's time over the warm run's Spark CPU time spread over all {cores} cores (a "
        "warm scan cannot be faster than its own computation)."
        + " A warm run may still read a page from S3: Hadoop's WebHDFS client stops reading a stream where a column "
        "chunk ends, and the faster the server, the further past that point it has streamed, into a page the cold run "
        "never needed."
        + f" The {len(runs)} scans took {sum(r.scan_seconds for r in runs):.0f} s in all."
        + f"\n\n![{image[0]}]({image[1]})\n"
    )
    return measured_section(
        "spark_scan",
        "Spark scan: pass-through, cold cache, warm cache",
        full=full,
        markdown=text,
        results=results,
        targets={
            "spark_warm_speedup_vs_passthrough": round(warm_speedup, 3),
            "spark_cold_vs_passthrough": round(cold_ratio, 3),
        },
    )


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    sys.exit(driver(sys.argv[2:]))
