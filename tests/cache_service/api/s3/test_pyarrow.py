"""pyarrow's own S3 client (the AWS SDK for C++) writes and reads Parquet through the cache's S3 API."""

from __future__ import annotations

from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from infra.cache_process import CacheProcess
from tests.support.metrics import s3_bytes_read
from tests.support.webhdfs import WebHdfsClient


@pytest.fixture
def arrow_s3(s3_cache: CacheProcess) -> fs.S3FileSystem:
    return fs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=urlsplit(s3_cache.s3_url).netloc,
        scheme="http",
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
    )


def _table(rows: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(offset, offset + rows), pa.int64()),
            "name": pa.array([f"player-{i % 97}" for i in range(offset, offset + rows)]),
            "score": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
        }
    )


def test_pyarrow_writes_and_reads_parquet_through_the_cache(
    arrow_s3: fs.S3FileSystem, s3_client, s3_bucket: str, s3_cache: CacheProcess, hdfs: WebHdfsClient, prefix: str
) -> None:
    table = _table(20_000)
    pq.write_table(table, f"{s3_bucket}/{prefix}/events.parquet", filesystem=arrow_s3, row_group_size=5_000)
    assert s3_client.head_object(Bucket=s3_bucket, Key=f"{prefix}/events.parquet")["ContentLength"] > 0
    before = s3_bytes_read(s3_cache.webhdfs_url)
    assert pq.read_table(f"{s3_bucket}/{prefix}/events.parquet", filesystem=arrow_s3).equals(table)
    # Column chunks are range reads at many offsets: the pages cached by the write answer every one of them.
    subset = pq.read_table(f"{s3_bucket}/{prefix}/events.parquet", filesystem=arrow_s3, columns=["score"])
    assert subset.column("score").equals(table.column("score"))
    assert s3_bytes_read(s3_cache.webhdfs_url) == before
    assert hdfs.status(f"/{prefix}/events.parquet").json()["FileStatus"]["type"] == "FILE"


def test_pyarrow_reads_a_partitioned_dataset_written_behind_the_cache(
    arrow_s3: fs.S3FileSystem, s3_client, s3_bucket: str, prefix: str
) -> None:
    for day in (1, 2):
        sink = pa.BufferOutputStream()
        pq.write_table(_table(1_000, offset=day * 1_000), sink)
        s3_client.put_object(
            Bucket=s3_bucket, Key=f"{prefix}/table/dt={day}/part-0.parquet", Body=sink.getvalue().to_pybytes()
        )
    dataset = ds.dataset(f"{s3_bucket}/{prefix}/table", filesystem=arrow_s3, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == 2_000 and sorted(table.column("dt").unique().to_pylist()) == [1, 2]
    infos = arrow_s3.get_file_info(fs.FileSelector(f"{s3_bucket}/{prefix}/table", recursive=True))
    assert sorted(i.path.rsplit("/", 2)[-2] for i in infos if i.type == fs.FileType.File) == ["dt=1", "dt=2"]
