"""Spark reads and writes partitioned Parquet through the cache's WebHDFS API, backed by the S3 emulator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow.dataset as ds
import pytest
from pyspark.sql import DataFrame, SparkSession

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from tests.support.lake import emulator_filesystem
from tests.support.metrics import bytes_served, s3_bytes_read

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.spark

STAGING_MARKERS = ("_temporary", ".spark-staging")


class StagingWatcher:
    """Lists the bucket over and over while a job runs and remembers any staging object it ever sees."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client, self._bucket = client, bucket
        self.seen: set[str] = set()
        self.listings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket):
                for obj in page.get("Contents", []):
                    if any(marker in obj["Key"] for marker in STAGING_MARKERS):
                        self.seen.add(obj["Key"])
            self.listings += 1
            self._stop.wait(0.02)

    def __enter__(self) -> StagingWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "256KiB"}})


def _events(spark: SparkSession, n: int, shift: int = 0) -> DataFrame:
    return spark.range(0, n).selectExpr(
        f"id + {shift} as id", "concat('2026-11-0', cast(id % 3 + 1 as string)) as dt", "id * 2 as amount"
    )


def _rows(df: DataFrame) -> list[tuple]:
    return sorted((r["id"], str(r["dt"]), r["amount"]) for r in df.collect())


def _rows_from_s3(emulator: S3Emulator, bucket: str, prefix: str) -> list[tuple]:
    s3 = emulator_filesystem(emulator)
    table = ds.dataset(f"{bucket}/{prefix}", filesystem=s3, format="parquet", partitioning="hive").to_table()
    cols = table.to_pydict()
    return sorted(zip(cols["id"], [str(d) for d in cols["dt"]], cols["amount"], strict=True))


def test_partitioned_parquet_round_trip_through_the_cache(
    spark: SparkSession, cache: CacheProcess, bucket: str, s3_client: S3Client, s3_emulator: S3Emulator
) -> None:
    table = f"{cache.webhdfs_uri}/warehouse/events"
    expected = _rows(_events(spark, 3000))

    with StagingWatcher(s3_client, bucket) as watcher:
        _events(spark, 3000).write.mode("overwrite").partitionBy("dt").parquet(table)
        assert _rows(spark.read.parquet(table)) == expected

        # Dynamic partition overwrite replaces only the partitions the new data holds.
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        try:
            replacement = _events(spark, 3000, shift=100_000).where("dt = '2026-11-02'")
            replacement.write.mode("overwrite").partitionBy("dt").parquet(table)
        finally:
            spark.conf.set("spark.sql.sources.partitionOverwriteMode", "static")
    expected = sorted([r for r in expected if r[1] != "2026-11-02"] + _rows(replacement))

    assert watcher.listings > 3
    assert watcher.seen == set(), f"staging objects reached S3: {sorted(watcher.seen)[:5]}"
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "warehouse/events/_SUCCESS" in keys
    assert not [k for k in keys if any(m in k for m in STAGING_MARKERS)]

    # pyarrow reading straight from S3 sees what Spark published through the cache.
    assert _rows_from_s3(s3_emulator, bucket, "warehouse/events") == expected

    assert _rows(spark.read.parquet(table)) == expected  # first read: may fill the cache
    before_s3, before_cache = s3_bytes_read(cache.webhdfs_url), bytes_served(cache.webhdfs_url, "memory")
    before_cache += bytes_served(cache.webhdfs_url, "disk")
    assert _rows(spark.read.parquet(table)) == expected  # second read: the cache alone
    after_cache = bytes_served(cache.webhdfs_url, "memory") + bytes_served(cache.webhdfs_url, "disk")
    assert s3_bytes_read(cache.webhdfs_url) - before_s3 == 0
    assert after_cache > before_cache


def test_static_overwrite_replaces_the_whole_table(spark: SparkSession, cache: CacheProcess) -> None:
    table = f"{cache.webhdfs_uri}/warehouse/static"
    _events(spark, 900).write.mode("overwrite").partitionBy("dt").parquet(table)
    second = _events(spark, 300, shift=5000).where("dt <> '2026-11-03'")
    second.write.mode("overwrite").partitionBy("dt").parquet(table)
    back = spark.read.parquet(table)
    assert _rows(back) == _rows(second)
    assert {str(r["dt"]) for r in back.select("dt").distinct().collect()} == {"2026-11-01", "2026-11-02"}
