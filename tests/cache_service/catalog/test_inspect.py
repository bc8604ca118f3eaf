"""Inspection reads a table from S3 and refuses anything that is not a published whole."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Iterator

import pyarrow as pa
import pytest

from cache_service.catalog.errors import TableLayoutError, UnpublishedDataError
from cache_service.catalog.inspect import TableInspector, hive_type
from cache_service.catalog.model import Column
from cache_service.config import UnderStoreConfig
from cache_service.under_store.base import ObjectStatus
from cache_service.under_store.s3 import S3UnderStore
from tests.support.tables import TableWriter, parquet_bytes

DT = (Column("dt"),)


def _inspect(store: S3UnderStore, bucket: str, keys: tuple[Column, ...] = DT):
    return TableInspector(store).inspect(bucket, "warehouse/events", keys)


def test_published_table_is_read_with_partitions_files_and_schema(
    store: S3UnderStore, bucket: str, events: TableWriter
) -> None:
    events.partition("dt=2026-11-01", rows=3)
    events.partition("dt=2026-11-01", rows=2, name="part-00001.parquet")
    events.partition("dt=2026-11-02%3A00", rows=1)  # Spark escapes ':' in partition values
    events.commit()

    table = _inspect(store, bucket)

    assert [p.values for p in table.partitions] == [("2026-11-01",), ("2026-11-02:00",)]
    assert [p.directory for p in table.partitions] == ["dt=2026-11-01", "dt=2026-11-02%3A00"]
    assert [len(p.files) for p in table.partitions] == [2, 1]
    assert table.columns == (Column("id", "bigint"), Column("amount", "double"))
    assert table.files == 3 and table.bytes == sum(p.bytes for p in table.partitions) > 0


@pytest.mark.parametrize("staging", ["_temporary/0/_temporary/attempt_1/part-0.parquet", ".spark-staging-1a2b/x"])
def test_staging_objects_in_s3_refuse_the_table(
    store: S3UnderStore, bucket: str, events: TableWriter, staging: str
) -> None:
    events.partition("dt=2026-11-01")
    events.put(staging, b"half-written")
    events.commit()
    with pytest.raises(UnpublishedDataError, match="staging object"):
        _inspect(store, bucket)


def test_table_with_nothing_in_s3_is_not_found(store: S3UnderStore, bucket: str) -> None:
    with pytest.raises(FileNotFoundError, match="no such table"):
        _inspect(store, bucket)


def test_missing_success_marker_refuses_the_table(store: S3UnderStore, bucket: str, events: TableWriter) -> None:
    events.partition("dt=2026-11-01")
    with pytest.raises(UnpublishedDataError, match="_SUCCESS is missing"):
        _inspect(store, bucket)


def _truncated() -> bytes:
    data = parquet_bytes({"id": list(range(100))})
    return data[: len(data) // 2]


def _missing_bytes_before_its_footer() -> bytes:
    """Header and footer intact, data pages short: the footer's column chunks no longer fit the object's size."""
    data = parquet_bytes({"id": list(range(1000))})
    footer = int.from_bytes(data[-8:-4], "little") + 8
    return data[:4] + data[len(data) // 2 : len(data) - footer] + data[-footer:]


@pytest.mark.parametrize(
    ("damaged", "match"),
    [(_truncated, "magic"), (_missing_bytes_before_its_footer, "shorter than it was written")],
    ids=["truncated", "missing bytes before its footer"],
)
def test_a_file_cut_short_refuses_the_table(
    store: S3UnderStore, bucket: str, events: TableWriter, damaged: Callable[[], bytes], match: str
) -> None:
    events.put("dt=2026-11-01/part-00000.parquet", damaged())
    events.commit()
    with pytest.raises(UnpublishedDataError, match=match):
        _inspect(store, bucket)


class RewritingStore(S3UnderStore):
    """The under store, while a writer replaces one file between the listing and the checks that follow it."""

    def __init__(self, config: UnderStoreConfig, events: TableWriter, rel: str) -> None:
        super().__init__(config)
        self._events, self._rel = events, rel

    def list_recursive(self, bucket: str, prefix: str) -> Iterator[ObjectStatus]:
        listed = list(super().list_recursive(bucket, prefix))
        self._events.put(self._rel, parquet_bytes({"id": list(range(50))}))
        return iter(listed)


def test_file_whose_size_in_s3_differs_from_the_listing_refuses_the_table(
    store_config: UnderStoreConfig, bucket: str, events: TableWriter
) -> None:
    events.partition("dt=2026-11-01", rows=2)
    events.commit()
    rewriting = RewritingStore(store_config, events, "dt=2026-11-01/part-00000.parquet")
    try:
        with pytest.raises(UnpublishedDataError, match="being rewritten"):
            TableInspector(rewriting).inspect(bucket, "warehouse/events", DT)
    finally:
        rewriting.close()


def test_schema_is_merged_from_every_footer(store: S3UnderStore, bucket: str, events: TableWriter) -> None:
    events.put(
        "dt=2026-11-01/part-00000.parquet",
        parquet_bytes({"id": pa.array([1], pa.int32()), "name": ["a"], "dt": ["ignored: a partition column"]}),
    )
    events.put(
        "dt=2026-11-02/part-00000.parquet",
        parquet_bytes(
            {
                "id": pa.array([2], pa.int64()),
                "Price": pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2)),
                "at": pa.array([datetime.datetime(2026, 11, 2)], pa.timestamp("us")),
                "tags": [["x", "y"]],
                "point": [{"x": 1.0, "y": 2.0}],
            }
        ),
    )
    events.commit()

    table = _inspect(store, bucket)

    assert table.columns == (
        Column("id", "bigint"),
        Column("name", "string"),
        Column("price", "decimal(10,2)"),
        Column("at", "timestamp"),
        Column("tags", "array<string>"),
        Column("point", "struct<x:double,y:double>"),
    )


def test_incompatible_schemas_are_a_layout_error(store: S3UnderStore, bucket: str, events: TableWriter) -> None:
    events.put("dt=2026-11-01/part-00000.parquet", parquet_bytes({"id": [1]}))
    events.put("dt=2026-11-02/part-00000.parquet", parquet_bytes({"id": ["one"]}))
    events.commit()
    with pytest.raises(TableLayoutError, match="cannot be merged"):
        _inspect(store, bucket)


def test_file_at_the_root_of_a_partitioned_table_is_a_layout_error(
    store: S3UnderStore, bucket: str, events: TableWriter
) -> None:
    events.partition("")
    events.commit()
    with pytest.raises(TableLayoutError, match=r"is not under dt=\.\.\./"):
        _inspect(store, bucket)


def test_directory_of_another_partition_key_is_a_layout_error(
    store: S3UnderStore, bucket: str, events: TableWriter
) -> None:
    events.partition("day=2026-11-01")
    events.commit()
    with pytest.raises(TableLayoutError, match="expected partition key 'dt'"):
        _inspect(store, bucket)


def test_hive_types_of_arrow_types() -> None:
    assert hive_type(pa.dictionary(pa.int32(), pa.string())) == "string"
    assert hive_type(pa.map_(pa.string(), pa.int16())) == "map<string,smallint>"
    assert hive_type(pa.uint32()) == "bigint"
    with pytest.raises(ValueError, match="no Hive equivalent"):
        hive_type(pa.time64("us"))
