"""The write path: write-through for published paths, staging held in the cache, publish on rename, no loss on crash."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.webhdfs import WebHdfsClient


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


@pytest.fixture
def hdfs(cache: CacheProcess) -> WebHdfsClient:
    return WebHdfsClient(cache.webhdfs_url)


def _keys(s3_client, bucket: str) -> set[str]:
    return {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_create_is_acknowledged_only_once_the_object_is_in_s3(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    data = os.urandom(200_000)
    assert hdfs.create("/warehouse/t/part-0.parquet", data).status == 201
    # No wait, no retry: the 201 means S3 already has every byte.
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/t/part-0.parquet")["Body"].read() == data


def test_written_data_is_cached_and_read_without_s3(hdfs: WebHdfsClient, cache: CacheProcess) -> None:
    data = os.urandom(300_000)
    assert hdfs.create("/warehouse/w.bin", data).status == 201
    before = s3_bytes_read(cache.webhdfs_url)
    assert hdfs.read("/warehouse/w.bin").body == data
    assert s3_bytes_read(cache.webhdfs_url) == before


def test_staged_files_never_reach_s3(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    for path in ("/warehouse/t/_temporary/0/_temporary/attempt_1/part-0", "/warehouse/t/.spark-staging-42/dt=1/p"):
        assert hdfs.create(path, b"staged bytes").status == 201
        assert hdfs.read(path).body == b"staged bytes"
    assert hdfs.list("/warehouse/t") == [".spark-staging-42", "_temporary"]
    assert _keys(s3_client, bucket) == set()


def test_rename_to_a_published_path_publishes_before_answering(
    hdfs: WebHdfsClient, cache: CacheProcess, s3_client, bucket: str
) -> None:
    payload = {f"/warehouse/t/_temporary/0/task_0/dt={i}/part-0": os.urandom(70_000 + i) for i in range(3)}
    for path, data in payload.items():
        assert hdfs.create(path, data).status == 201
    assert hdfs.rename("/warehouse/t/_temporary/0/task_0/dt=0", "/warehouse/t/dt=0").json() == {"boolean": True}
    assert (
        s3_client.get_object(Bucket=bucket, Key="warehouse/t/dt=0/part-0")["Body"].read()
        == payload["/warehouse/t/_temporary/0/task_0/dt=0/part-0"]
    )
    # HDFS keeps the parent of what moved; only the moved entry is gone from staging.
    assert hdfs.list("/warehouse/t/_temporary/0/task_0") == ["dt=1", "dt=2"]
    before = s3_bytes_read(cache.webhdfs_url)
    assert hdfs.read("/warehouse/t/dt=0/part-0").body == payload["/warehouse/t/_temporary/0/task_0/dt=0/part-0"]
    assert s3_bytes_read(cache.webhdfs_url) == before, "published pages are cached from the staged bytes"
    assert hdfs.delete("/warehouse/t/_temporary", recursive=True).json() == {"boolean": True}
    assert hdfs.list("/warehouse/t") == ["dt=0"]
    assert _keys(s3_client, bucket) == {"warehouse/t/dt=0/part-0"}


def test_staging_to_staging_rename_stays_local(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    assert hdfs.create("/warehouse/t/_temporary/0/_temporary/attempt_1/p", b"x").status == 201
    assert hdfs.rename("/warehouse/t/_temporary/0/_temporary/attempt_1", "/warehouse/t/_temporary/0/task_1").json()
    assert hdfs.read("/warehouse/t/_temporary/0/task_1/p").body == b"x"
    assert _keys(s3_client, bucket) == set()


def test_renaming_published_data_rekeys_cached_pages(
    hdfs: WebHdfsClient, cache: CacheProcess, s3_client, bucket: str
) -> None:
    data = os.urandom(150_000)
    assert hdfs.create("/warehouse/a/f", data).status == 201
    assert hdfs.rename("/warehouse/a", "/warehouse/b").json() == {"boolean": True}
    assert _keys(s3_client, bucket) == {"warehouse/b/f"}
    before = s3_bytes_read(cache.webhdfs_url)
    assert hdfs.read("/warehouse/b/f").body == data
    assert s3_bytes_read(cache.webhdfs_url) == before


def test_delete_removes_from_s3_and_from_the_cache(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    assert hdfs.create("/warehouse/gone", b"bye").status == 201
    assert hdfs.delete("/warehouse/gone").json() == {"boolean": True}
    assert _keys(s3_client, bucket) == set()
    assert hdfs.read("/warehouse/gone").status == 404


def test_acknowledged_writes_survive_a_crash(cache: CacheProcess, s3_client, bucket: str) -> None:
    hdfs = WebHdfsClient(cache.webhdfs_url)
    published, staged = os.urandom(100_000), os.urandom(90_000)
    assert hdfs.create("/warehouse/t/published", published).status == 201
    assert hdfs.create("/warehouse/t/_temporary/0/task_0/part-0", staged).status == 201
    cache.kill()  # SIGKILL: no shutdown code runs
    cache.start()
    assert hdfs.read("/warehouse/t/published").body == published
    assert hdfs.read("/warehouse/t/_temporary/0/task_0/part-0").body == staged
    assert hdfs.rename("/warehouse/t/_temporary/0/task_0/part-0", "/warehouse/t/part-0").json() == {"boolean": True}
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/t/part-0")["Body"].read() == staged


def test_disk_tier_is_found_again_after_a_restart(cache: CacheProcess, s3_client, bucket: str) -> None:
    data = os.urandom(400_000)
    s3_client.put_object(Bucket=bucket, Key="warehouse/cold.bin", Body=data)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.read("/warehouse/cold.bin").body == data
    cache.stop()
    cache.start()
    assert hdfs.read("/warehouse/cold.bin").body == data
    assert s3_bytes_read(cache.webhdfs_url) == 0
    assert scrape(cache.webhdfs_url)['lakecache_tier_pages{tier="disk"}'] >= 7
