"""Spark writes and reads partitioned Parquet through a three-worker cache cluster, addressed the way a user would:
Hadoop's HA nameservice settings from ``cachectl cluster spark-conf``, no jar, every read redirected to its block's
owner and cached there only."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from tests.integration.test_spark_webhdfs import STAGING_MARKERS, StagingWatcher, _events, _rows, _rows_from_s3
from tests.support.cachectl import cachectl
from tests.support.caches import CacheFactory, cluster_report
from tests.support.metrics import s3_bytes_read

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.spark

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
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
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
