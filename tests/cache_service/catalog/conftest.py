"""Fixtures for metastore sync: S3 through the under store, Glue on the emulator, tiny Parquet tables.

The Spark tests use the root ``spark`` fixture, a session with Hive support."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from cache_service.catalog.glue import glue_client
from cache_service.config import MountConfig, UnderStoreConfig
from cache_service.namespace.mounts import MountTable
from cache_service.under_store.s3 import S3UnderStore
from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from tests.support.tables import TableWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyspark.sql import DataFrame, SparkSession


@pytest.fixture
def store_config(s3_emulator: S3Emulator) -> UnderStoreConfig:
    """The emulator as the under store."""
    return UnderStoreConfig(
        endpoint_url=s3_emulator.endpoint_url,
        access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        max_attempts=2,
    )


@pytest.fixture
def store(store_config: UnderStoreConfig) -> Iterator[S3UnderStore]:
    """The under store on the emulator: what metastore sync reads S3 with."""
    under_store = S3UnderStore(store_config)
    yield under_store
    under_store.close()


@pytest.fixture
def mounts(bucket: str) -> MountTable:
    """``/warehouse`` mounted on the test bucket's ``warehouse/`` prefix."""
    return MountTable([MountConfig(path="/warehouse", uri=f"s3://{bucket}/warehouse")])


@pytest.fixture
def events(s3_client: S3Client, bucket: str) -> TableWriter:
    """Writes the table ``/warehouse/events`` (S3 ``warehouse/events``)."""
    return TableWriter(s3_client, bucket, "warehouse/events")


@pytest.fixture(scope="session")
def glue(s3_emulator: S3Emulator) -> Any:
    """A boto3 Glue client on the emulator."""
    return glue_client(
        endpoint_url=s3_emulator.endpoint_url,
        access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def database() -> str:
    """A database name no other test uses (the emulator's Glue lives as long as the session)."""
    return f"db_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cache(cache_factory: Any, bucket: str) -> CacheProcess:
    """A cache worker mounting ``/warehouse`` on the test bucket: Spark writes tables through its WebHDFS API."""
    process: CacheProcess = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    return process


def spark_events(spark: SparkSession, n: int, days: Sequence[str], shift: int = 0) -> DataFrame:
    """``n`` rows ``(id, dt, amount)`` spread over ``days``."""
    literal = ", ".join(f"'{d}'" for d in days)
    return spark.range(0, n).selectExpr(
        f"id + {shift} as id",
        f"element_at(array({literal}), cast(id % {len(days)} + 1 as int)) as dt",
        "id * 2 as amount",
    )


def spark_rows(df: DataFrame) -> list[tuple[int, str, int]]:
    """The rows of ``df`` as sorted ``(id, dt, amount)`` tuples."""
    return sorted((r["id"], str(r["dt"]), r["amount"]) for r in df.collect())
