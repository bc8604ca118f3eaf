"""The interactive path: Spark writes a partitioned table through the cache's WebHDFS API, metastore sync registers
it in Glue, and a query engine resolves the table through Glue and reads its S3 locations with pyarrow, once
straight from S3 and once through the cache's S3 API, getting the rows Spark wrote both times."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from cache_service.catalog.glue import GlueCatalog
from cache_service.catalog.model import Column, TableSpec
from cache_service.catalog.sync import MetastoreSync
from cache_service.namespace.mounts import MountTable
from cache_service.under_store.s3 import S3UnderStore
from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from tests.cache_service.catalog.conftest import spark_events, spark_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


def _s3(endpoint_url: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=endpoint_url,
        scheme="http",
        access_key=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
        allow_bucket_creation=False,
    )


def _query(glue: Any, database: str, name: str, s3: pafs.S3FileSystem) -> list[tuple[Any, ...]]:
    """``SELECT id, dt, amount FROM database.name`` as a query engine plans it: table and partitions from Glue,
    data from each partition's location."""
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    keys = [k["Name"] for k in table["PartitionKeys"]]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    rows: list[tuple[Any, ...]] = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name):
        for partition in page["Partitions"]:
            location = partition["StorageDescriptor"]["Location"]
            assert location.startswith("s3://"), location
            values = dict(zip(keys, partition["Values"], strict=True))
            data = ds.dataset(location.removeprefix("s3://").rstrip("/"), filesystem=s3, format="parquet")
            rows.extend((r["id"], values["dt"], r["amount"]) for r in data.to_table(columns=columns).to_pylist())
    return sorted(rows)


def test_spark_table_is_queried_through_glue_from_s3_and_through_the_cache(
    spark: SparkSession,
    cache: CacheProcess,
    mounts: MountTable,
    store: S3UnderStore,
    glue: Any,
    database: str,
    s3_emulator: S3Emulator,
) -> None:
    written = spark_events(spark, 60, ["2026-11-01", "2026-11-02", "2026-11-03"])
    written.write.partitionBy("dt").parquet(f"{cache.webhdfs_uri}/warehouse/events")
    expected = spark_rows(written)

    result = MetastoreSync(GlueCatalog(glue), mounts, store).sync(
        TableSpec(database, "events", "/warehouse/events", (Column("dt"),))
    )
    assert result.changed and len(result.plan.add_partitions) == 3

    assert _query(glue, database, "events", _s3(s3_emulator.endpoint_url)) == expected
    assert _query(glue, database, "events", _s3(cache.s3_url)) == expected
