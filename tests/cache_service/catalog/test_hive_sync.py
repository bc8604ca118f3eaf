"""Metastore sync into a Hive metastore (embedded Derby): Spark writes through the cache, sync registers the table,
Spark reads it back by name.

An embedded metastore opens every location with Hadoop, and Spark's pip wheel has no ``s3`` filesystem, so the
Hive backend registers the cache's ``webhdfs://`` paths (``location_root``); see ``cache_service/catalog/hive.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cache_service.catalog.hive import HiveCatalog
from cache_service.catalog.model import Column, TableSpec
from cache_service.catalog.sync import MetastoreSync
from cache_service.namespace.mounts import MountTable
from cache_service.under_store.s3 import S3UnderStore
from infra.cache_process import CacheProcess
from tests.cache_service.catalog.conftest import spark_events, spark_rows
from tests.support.tables import TableWriter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


def test_hive_sync_follows_the_data_spark_writes(
    spark: SparkSession,
    cache: CacheProcess,
    mounts: MountTable,
    store: S3UnderStore,
    events: TableWriter,
    database: str,
) -> None:
    root = f"{cache.webhdfs_uri}/warehouse/events"
    first = spark_events(spark, 40, ["2026-11-01", "2026-11-02"])
    first.write.partitionBy("dt").parquet(root)
    catalog = HiveCatalog(spark)
    sync = MetastoreSync(catalog, mounts, store, location_root=cache.webhdfs_uri)
    spec = TableSpec(database, "events", "/warehouse/events", (Column("dt"),))
    name = f"{database}.events"

    created = sync.sync(spec)

    assert created.plan.create_table and len(created.plan.add_partitions) == 2
    table = catalog.get_table(database, "events")
    assert table is not None and table.location == root
    assert table.columns == (Column("id", "bigint"), Column("amount", "bigint"))
    assert sorted(p.location for p in catalog.get_partitions(table)) == [
        f"{root}/dt=2026-11-01",
        f"{root}/dt=2026-11-02",
    ]
    assert spark_rows(spark.table(name)) == spark_rows(first)
    assert sync.sync(spec).plan.is_empty

    # A second run appends to one day and starts another: one partition updated, one added.
    second = spark_events(spark, 10, ["2026-11-02", "2026-11-03"], shift=1000)
    second.write.mode("append").partitionBy("dt").parquet(root)
    grown = sync.sync(spec)
    assert [p.values for p in grown.plan.add_partitions] == [("2026-11-03",)]
    assert [p.values for p in grown.plan.update_partitions] == [("2026-11-02",)]
    assert spark_rows(spark.table(name)) == sorted(spark_rows(first) + spark_rows(second))
    assert sync.sync(spec).plan.is_empty

    # A day removed from storage stays registered until a sync is asked to drop it; its data is not touched.
    events.delete("dt=2026-11-01/")
    assert [p.values for p in sync.sync(spec).plan.kept_partitions] == [("2026-11-01",)]
    assert len(catalog.get_partitions(table)) == 3
    dropped = sync.sync(spec, drop_missing=True)
    assert [p.values for p in dropped.plan.drop_partitions] == [("2026-11-01",)]
    assert sorted(p.values for p in catalog.get_partitions(table)) == [("2026-11-02",), ("2026-11-03",)]
    expected = [r for r in sorted(spark_rows(first) + spark_rows(second)) if r[1] != "2026-11-01"]
    assert spark_rows(spark.table(name)) == expected
