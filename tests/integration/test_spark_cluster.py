"""Spark writes and reads partitioned Parquet through a three-worker cache cluster, addressed the way a user would:
Hadoop's HA nameservice settings from ``cachectl cluster spark-conf``, no jar, every read redirected to its block's
owner and cached there only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from infra.cache_process import REPO_ROOT, CacheProcess
from infra.cache_ring import cluster_report
from infra.s3_emulator import S3Emulator
from infra.spark_submit import spark_submit_argv, spark_submit_env
from spark_jobs.telemetry.generator import write_day_to_s3
from tests.integration.test_spark_webhdfs import STAGING_MARKERS, StagingWatcher, _events, _rows, _rows_from_s3
from tests.support.cachectl import cachectl
from tests.support.caches import CacheFactory
from tests.support.metrics import s3_bytes_read, scrape

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.spark

INGEST = REPO_ROOT / "spark_jobs" / "ingest_events.py"
DAY = date(2026, 11, 23)
CLUSTER = {"cluster": {"block_size": "256KiB", "heartbeat_interval": "250ms"}, "store": {"page_size": "256KiB"}}


def test_spark_round_trip_through_a_three_worker_cluster_as_one_nameservice(
    spark: SparkSession,
    cache_factory: CacheFactory,
    redis_url: str,
    bucket: str,
    s3_client: S3Client,
    s3_emulator: S3Emulator,
) -> None:
    workers: list[CacheProcess] = cache_factory.cluster(3, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    conf = cachectl("cluster", "spark-conf", "--json", endpoint=workers[0].webhdfs_url, token=workers[0].token)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in conf.json().items():
        hadoop.set(key, value)
    table = "webhdfs://lakecache/lake/events"
    expected = _rows(_events(spark, 20_000))

    with StagingWatcher(s3_client, bucket) as watcher:
        _events(spark, 20_000).write.mode("overwrite").partitionBy("dt").parquet(table)
    assert watcher.seen == set(), f"staging objects reached S3: {sorted(watcher.seen)[:5]}"
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "lake/events/_SUCCESS" in keys and not [k for k in keys if any(m in k for m in STAGING_MARKERS)]
    assert _rows_from_s3(s3_emulator, bucket, "lake/events") == expected

    assert _rows(spark.read.parquet(table)) == expected  # fills each block's owner
    before = sum(s3_bytes_read(w.webhdfs_url) for w in workers)
    assert _rows(spark.read.parquet(table)) == expected
    assert sum(s3_bytes_read(w.webhdfs_url) for w in workers) == before  # the second read is all cache
    time.sleep(1)  # pages travel in heartbeats (every 250 ms here)
    served = {w.webhdfs_port: _pages(w) for w in workers}
    assert sum(1 for pages in served.values() if pages > 0) >= 2, f"the blocks stayed on one worker: {served}"


def _pages(worker: CacheProcess) -> int:
    report = cluster_report(worker)
    return int(next(m["pages"] for m in report["members"] if m["id"] == report["worker"]))


def test_the_daily_ingest_succeeds_when_the_worker_it_writes_through_is_killed_mid_job(
    cache_factory: CacheFactory, redis_url: str, bucket: str, s3_client: S3Client, tmp_path: Path
) -> None:
    workers = cache_factory.cluster(3, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    write_day_to_s3(s3_client, bucket, "lake/raw/events", DAY, 20_000, seed=11, files=6, defect_rate=0.02)
    settings = cachectl(
        "cluster",
        "spark-conf",
        "--json",
        "--nameservice",
        "ingest",
        endpoint=workers[0].webhdfs_url,
        token=workers[0].token,
    ).json()
    lake = "webhdfs://ingest/lake"
    summary = tmp_path / "summary.json"
    args = ["--raw", f"{lake}/raw/events/dt={DAY}", "--date", DAY.isoformat(), "--shuffle-partitions", "12"]
    args += ["--output", f"{lake}/warehouse/events_clean", "--quarantine", f"{lake}/warehouse/events_quarantine"]
    argv = spark_submit_argv(
        INGEST,
        *args,
        "--summary-json",
        str(summary),
        master="local[2,4]",
        conf={f"spark.hadoop.{k}": v for k, v in settings.items()},
    )
    with StagingWatcher(s3_client, bucket) as watcher:
        job = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=spark_submit_env(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not _staged_files(workers) and job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = max(workers, key=_client_requests)  # the worker Spark's client talks to
            assert _client_requests(victim) > 0
            mid_job = job.poll() is None
            victim.kill()
            output, _ = job.communicate(timeout=600)
        finally:
            if job.poll() is None:
                job.kill()
    assert job.returncode == 0, _why(output)
    assert mid_job, "the job ended before a worker could be killed"
    assert watcher.seen == set(), f"staging objects reached S3: {sorted(watcher.seen)[:5]}"
    result = json.loads(summary.read_text())
    assert result["raw_lines"] == 20_000
    assert result["clean"] + result["duplicates"] + result["quarantined"] == 20_000
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="lake/warehouse/")["Contents"]]
    assert not [k for k in keys if any(m in k for m in STAGING_MARKERS)], keys
    clean = _parquet_files(s3_client, bucket, keys, "lake/warehouse/events_clean/")
    assert clean.num_rows == result["clean"]
    assert len(set(clean.column("event_id").to_pylist())) == result["clean"]


def _staged_files(workers: list[CacheProcess]) -> int:
    """Task output files staged on the workers' disks now (os.walk skips the directories removed meanwhile)."""
    return sum(
        sum(name.startswith("part-") for name in files)
        for w in workers
        for root, _, files in os.walk(w.state_dir)
        if "/staging/" in root and "_temporary" in root
    )


def _client_requests(worker: CacheProcess) -> float:
    """GETFILESTATUS requests the worker answered: Spark's clients send them; workers never send each other any."""
    metrics = scrape(worker.webhdfs_url)
    return sum(v for k, v in metrics.items() if k.startswith("lakecache_requests_total") and "GETFILESTATUS" in k)


def _parquet_files(s3_client: S3Client, bucket: str, keys: list[str], prefix: str) -> pa.Table:
    """Every Parquet file under ``prefix`` in S3, read with pyarrow, as one table."""
    bodies = [s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys if k.startswith(prefix)]
    return pa.concat_tables([pq.read_table(io.BytesIO(b)) for b in bodies if b[:4] == b"PAR1"])


def _why(output: str) -> str:
    """What a failed job said: its exceptions' own lines (not their stacks), then the end of its output."""
    said = [line for line in output.splitlines() if ("Exception" in line or "Error" in line) and "\tat " not in line]
    return "\n".join(said[:40]) + "\n...\n" + output[-2000:]
