"""fsspec's own WebHDFS client (what pandas, Dask and notebooks use) against a cache worker, with S3 agreeing: it writes
(CREATE of an empty file, then APPENDs), reads, appends, moves and deletes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fsspec.implementations.webhdfs import WebHDFS
from yarl import URL

from infra.cache_process import CacheProcess


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


@pytest.fixture
def fs(cache: CacheProcess) -> WebHDFS:
    url = URL(cache.webhdfs_url)
    return WebHDFS(host=url.host, port=url.port, user="notebook", skip_instance_cache=True)


def body(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_fsspec_writes_reads_appends_moves_and_deletes(fs: WebHDFS, s3_client, bucket: str) -> None:
    data = os.urandom(300_000)
    with fs.open("/warehouse/nb/data.bin", "wb", block_size=100_000) as f:  # several APPENDs
        f.write(data)
    assert body(s3_client, bucket, "warehouse/nb/data.bin") == data
    assert fs.cat("/warehouse/nb/data.bin") == data
    with fs.open("/warehouse/nb/data.bin", "rb") as f:
        f.seek(123_456)
        assert f.read(1000) == data[123_456:124_456]
    # fsspec's own mode "ab" never keeps the APPEND's data URL (WebHDFile.location stays None in its 2026.9 release):
    # append through its request call instead, as its writes do.
    fs._call("APPEND", "post", "/warehouse/nb/data.bin", data=b"tail")
    assert body(s3_client, bucket, "warehouse/nb/data.bin") == data + b"tail"
    assert fs.info("/warehouse/nb/data.bin")["size"] == 300_004

    fs.pipe("/warehouse/nb/small.txt", b"small")
    assert body(s3_client, bucket, "warehouse/nb/small.txt") == b"small"
    fs.mv("/warehouse/nb/small.txt", "/warehouse/nb/moved.txt")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("/warehouse/nb", detail=False)) == ["data.bin", "moved.txt"]
    assert fs.cat("/warehouse/nb/moved.txt") == b"small"

    fs.rm("/warehouse/nb/moved.txt")
    assert not fs.exists("/warehouse/nb/moved.txt")
    fs.rm("/warehouse/nb", recursive=True)
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="warehouse/nb").get("KeyCount") == 0


def test_fsspec_sees_hdfs_errors_as_python_ones(fs: WebHDFS) -> None:
    with pytest.raises(FileNotFoundError):
        fs.info("/warehouse/missing")
    with pytest.raises(FileNotFoundError):
        fs._call("APPEND", "post", "/warehouse/missing", data=b"x")
    fs.pipe("/warehouse/one.txt", b"1")
    with pytest.raises(ValueError, match="larger"):
        fs._call("TRUNCATE", "post", "/warehouse/one.txt", newlength=2)
