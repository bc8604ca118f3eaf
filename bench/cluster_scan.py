"""The Spark scan of ``bench/spark_scan.py`` through a three-worker cluster addressed as an HA nameservice: cold, warm,
and warm again with one worker SIGKILLed halfway.

The table is ``spark_scan``'s (the demo's game events, written straight into the S3 emulator); every worker reads S3
through the latency model. Each repetition gets a new cluster (``CacheCluster``: its own Redis, three empty workers)
named by the nameservice ``lakecache<repetition>`` (``ha_settings`` of ``GET /admin/v1/cluster``, what
``cachectl cluster spark-conf --json`` prints), so Spark reads ``webhdfs://lakecache0/warehouse/events``: status and
listings from the first worker of the nameservice, each OPEN redirected to its block's owner.

One ``spark-submit --master local[2,4]`` application (``driver``: this module run as a PySpark script) scans one day
through a lone worker first (JVM start-up and JIT compilation, discarded), then in each repetition: cold, warm, and
**killed**: the warm scan again while this process SIGKILLs (``CacheProcess.kill()``) the worker Spark's client talks
to (the nameservice's first namenode, which also owns about a third of the blocks) half the warm scan's time after it
started. ``local[2,4]`` lets a failed task be retried, as any real cluster does (plain local mode retries none).

The driver and this process talk through files in a folder of their own (the channel): the driver appends events to
``events.jsonl`` (``want`` a repetition's cluster, ``kill`` now plus a delay, ``done`` with a repetition) and waits
for ``cluster-<repetition>.json`` (the nameservice's settings and the workers' URLs), which this process writes once
that cluster answers. Each run records every worker's counters before and after (``CacheCounters``); a killed
worker's last counters are those scraped just before the kill.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cache_cluster import CacheCluster
from bench.spark_scan import BYTES_PER_EVENT, DAYS, FILE_BYTES, upload
from cache_service.cluster.client_settings import ha_settings
from infra.cache_metrics import CacheCounters, CacheMetricsError
from infra.cache_process import REPO_ROOT, CacheProcess
from infra.cache_ring import cluster_report
from infra.game_events import game_event_files
from infra.s3_emulator import S3Emulator
from infra.service_process import log_tail
from infra.spark_submit import spark_submit_argv, spark_submit_env

BUCKET = "lake"
PREFIX = "warehouse/events"
MODES = ("cold", "warm", "killed")
SPARK_TIMEOUT = 1800.0
CHANNEL_TIMEOUT = 300.0
WORKERS = 3
MASTER = "local[2,4]"


@dataclass(frozen=True)
class ScanPlan:
    """The table's size in events and the repetitions of cold, warm and killed (each on a new cluster)."""

    events: int
    repetitions: int

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> ScanPlan:
        """Smoke: 200k events, once. Quick: 43M events (about 0.5 GiB), 3 times. Full: 86M (about 1 GiB), 3."""
        if smoke:
            return cls(events=200_000, repetitions=1)
        return cls(events=86_000_000 if full else 43_000_000, repetitions=3)

    @property
    def files_per_day(self) -> int:
        """Files per daily partition, for files of about ``spark_scan.FILE_BYTES``."""
        return max(1, math.ceil(self.events * BYTES_PER_EVENT / FILE_BYTES / DAYS))


@dataclass(frozen=True)
class ClusterScanRun:
    """One scan through the nameservice: its time, its answer, and every worker's counters around it (by URL;
    None where ``/metrics`` did not answer)."""

    mode: str
    repetition: int
    scan_seconds: float
    started_at: float
    ended_at: float
    result: dict[str, Any]
    before: dict[str, dict[str, float] | None]
    after: dict[str, dict[str, float] | None]


def counters(webhdfs_url: str) -> dict[str, float] | None:
    """What a worker has read from S3 and served so far, or None if its ``/metrics`` does not answer."""
    try:
        found = CacheCounters.scrape(webhdfs_url, timeout=5)
    except CacheMetricsError:
        return None
    return {"s3_bytes_read": found.s3_bytes_read, "served": sum(found.bytes_served.values())}


# --- inside spark-submit -----------------------------------------------------------------------------------------


def _event(channel: Path, event: str, repetition: int, **fields: float) -> None:
    line = json.dumps({"event": event, "repetition": repetition, **fields}) + "\n"
    with (channel / "events.jsonl").open("a") as events:
        events.write(line)


def _wait_for(path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + CHANNEL_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody wrote {path}")
        time.sleep(0.05)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def driver(argv: list[str]) -> int:
    """Inside ``spark-submit``: the warm-up scan, then cold, warm and killed per repetition; results to ``argv[1]``."""
    from pyspark.sql import SparkSession

    from spark_jobs.scan_events import scan_events

    plan = json.loads(Path(argv[0]).read_text())
    channel = Path(plan["channel"])
    spark = (
        SparkSession.builder.appName("lakecache-bench-cluster-scan")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")  # the job's default
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    runs: list[ClusterScanRun] = []
    try:
        scan_events(spark, plan["warmup"])
        for repetition in range(plan["repetitions"]):
            _event(channel, "want", repetition)
            cluster = _wait_for(channel / f"cluster-{repetition}.json")
            for key, value in cluster["settings"].items():
                hadoop.set(key, value)
            table = f"webhdfs://{cluster['nameservice']}/{plan['prefix']}"
            warm = 0.0
            for mode in MODES:
                if mode == "killed":
                    _event(channel, "kill", repetition, after=warm / 2)
                before = {url: counters(url) for url in cluster["urls"]}
                started, clock = time.time(), time.monotonic()
                result = scan_events(spark, table)
                seconds = time.monotonic() - clock
                after = {url: counters(url) for url in cluster["urls"]}
                warm = seconds if mode == "warm" else warm
                kept = {k: result[k] for k in ("rows", "distinct_players", "revenue", "groups")}
                runs.append(ClusterScanRun(mode, repetition, seconds, started, time.time(), kept, before, after))
            _event(channel, "done", repetition)
    finally:
        spark.stop()
    Path(argv[1]).write_text(json.dumps([asdict(r) for r in runs]))
    return 0


# --- this process --------------------------------------------------------------------------------------------


@dataclass
class Kill:
    """When a repetition's victim was killed, which worker it was, and its counters just before."""

    url: str
    at: float
    counters: dict[str, float] | None


class ClusterScans:
    """Starts each repetition's cluster when the driver asks, kills its victim when told, stops it when done."""

    def __init__(self, work: Path, s3_endpoint: str, table_bytes: int) -> None:
        self.work = work
        self.channel = work / "channel"
        self.channel.mkdir(parents=True, exist_ok=True)
        self.s3_endpoint = s3_endpoint
        self.table_bytes = table_bytes
        self.clusters: dict[int, CacheCluster] = {}
        self.victims: dict[int, CacheProcess] = {}
        self.kills: dict[int, Kill] = {}
        self.worker_urls: dict[int, list[str]] = {}

    def handle(self, event: dict[str, Any]) -> None:
        """Act on one event of the driver's."""
        repetition = int(event["repetition"])
        if event["event"] == "want":
            self._start(repetition)
        elif event["event"] == "kill":
            time.sleep(float(event["after"]))
            victim = self.victims[repetition]
            last = counters(victim.webhdfs_url)
            victim.kill()
            self.kills[repetition] = Kill(victim.webhdfs_url, time.time(), last)
        elif event["event"] == "done":
            self.clusters[repetition].stop()

    def _start(self, repetition: int) -> None:
        cluster = CacheCluster(
            self.work / f"cluster-{repetition}",
            WORKERS,
            s3_endpoint=self.s3_endpoint,
            mounts={"/warehouse": f"s3://{BUCKET}/warehouse"},
            # As in spark_scan: warm means data and file status; every cluster starts with neither.
            overrides={"metadata": {"sync_interval": "1h"}},
            # Room in memory for the whole table on each worker: after a kill, two hold what three did.
            memory_capacity=f"{max(1024, self.table_bytes * 5 // 4 // 2**20)}MiB",
            disk_capacity="8GiB",
        )
        self.clusters[repetition] = cluster.start()
        members = cluster_report(cluster.workers[0].webhdfs_url)["members"]
        nameservice = f"lakecache{repetition}"
        settings = ha_settings(members, nameservice)
        # Hadoop's failover provider tries the namenodes in the order listed: the first is the one Spark talks to.
        first_id = settings[f"dfs.ha.namenodes.{nameservice}"].split(",")[0]
        first = settings[f"dfs.namenode.http-address.{nameservice}.{first_id}"]
        self.victims[repetition] = next(w for w in cluster.workers if w.webhdfs_url.endswith(f"//{first}"))
        self.worker_urls[repetition] = cluster.urls
        answer = {"nameservice": nameservice, "settings": settings, "urls": cluster.urls}
        staged = self.channel / f"cluster-{repetition}.json.tmp"
        staged.write_text(json.dumps(answer))
        staged.rename(self.channel / f"cluster-{repetition}.json")

    def stop(self) -> None:
        """Stop every cluster still running."""
        for cluster in self.clusters.values():
            cluster.stop()


def _complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` that end in a newline (the last may still be being written)."""
    if not path.exists():
        return []
    return path.read_text().split("\n")[:-1]


def measure(
    smoke: bool, full: bool, work: Path, s3: S3Emulator, s3_endpoint: str
) -> tuple[ScanPlan, dict[str, int], list[ClusterScanRun], ClusterScans]:
    """Write the table, run the driver and serve its events; returns the plan, the table's size, the runs and the
    clusters' record (victims, kills, URLs). Raises ``RuntimeError`` if Spark fails or the answers disagree."""
    plan = ScanPlan.choose(full, smoke)
    files, rows, size = upload(
        s3.client(), BUCKET, PREFIX, game_event_files(plan.events, days=DAYS, files_per_day=plan.files_per_day)
    )
    scans = ClusterScans(work, s3_endpoint, size)
    warmup = CacheProcess(work / "warm-up", s3_endpoint=s3_endpoint, mounts={"/warehouse": f"s3://{BUCKET}/warehouse"})
    plan_file, output, log_path = work / "driver-plan.json", work / "driver-runs.json", work / "spark.log"
    try:
        warmup.start()
        plan_file.write_text(
            json.dumps(
                {
                    "warmup": f"{warmup.webhdfs_uri}/{PREFIX}/dt=2026-11-01",
                    "repetitions": plan.repetitions,
                    "prefix": PREFIX,
                    "channel": str(scans.channel),
                }
            )
        )
        argv = spark_submit_argv(Path(__file__).resolve(), "--driver", str(plan_file), str(output), master=MASTER)
        env = spark_submit_env(os.environ)
        env["PYTHONPATH"] = ":".join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        deadline = time.monotonic() + SPARK_TIMEOUT
        with log_path.open("wb") as log:
            spark = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                seen = 0
                while spark.poll() is None:
                    lines = _complete_lines(scans.channel / "events.jsonl")
                    for line in lines[seen:]:
                        event = json.loads(line)
                        if event["event"] == "done" and event["repetition"] == 0:
                            warmup.stop()  # the warm-up worker's memory goes back once nothing needs it
                        scans.handle(event)
                    seen = len(lines)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"spark-submit took more than {SPARK_TIMEOUT:.0f} s")
                    time.sleep(0.05)
            finally:
                if spark.poll() is None:
                    spark.kill()
                    spark.wait()
        if spark.returncode != 0 or not output.exists():
            raise RuntimeError(f"spark-submit exited with {spark.returncode}:\n{log_tail(log_path, 25)}")
    finally:
        warmup.stop()
        scans.stop()
        shutil.rmtree(warmup.data_dir, ignore_errors=True)
    runs = [ClusterScanRun(**r) for r in json.loads(output.read_text())]
    answers = {json.dumps(r.result, sort_keys=True) for r in runs}
    if len(answers) != 1:
        raise RuntimeError(f"the scans disagree on the aggregate: {sorted(answers)[:2]}")
    return plan, {"files": files, "rows": rows, "bytes": size}, runs, scans


def served_by_worker(run: ClusterScanRun, kill: Kill | None) -> dict[str, float]:
    """Bytes each worker served during ``run``; a worker killed during it counts until its last scrape."""
    served = {}
    for url, before in run.before.items():
        after = run.after.get(url)
        if after is None and kill is not None and kill.url == url:
            after = kill.counters
        if before is not None and after is not None:
            served[url] = after["served"] - before["served"]
    return served


def s3_bytes(run: ClusterScanRun, kill: Kill | None) -> float:
    """Bytes the cluster read from S3 during ``run`` (a killed worker's until its last scrape)."""
    total = 0.0
    for url, before in run.before.items():
        after = run.after.get(url)
        if after is None and kill is not None and kill.url == url:
            after = kill.counters
        if before is not None and after is not None:
            total += after["s3_bytes_read"] - before["s3_bytes_read"]
    return total


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    sys.exit(driver(sys.argv[2:]))
