"""APPEND, TRUNCATE and CONCAT against a real cache worker and S3 emulator: S3 agrees, staged files change locally,
bad input gets the HDFS error Hadoop expects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from infra.cache_process import CacheProcess
from tests.support.metrics import s3_bytes_read
from tests.support.webhdfs import Reply, WebHdfsClient


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


@pytest.fixture
def hdfs(cache: CacheProcess) -> WebHdfsClient:
    return WebHdfsClient(cache.webhdfs_url)


def append(hdfs: WebHdfsClient, path: str, data: bytes) -> Reply:
    """The two-step APPEND: a 307 to the data URL, then the bytes."""
    first = hdfs.call("POST", path, "APPEND")
    if first.status != 307:
        return first
    location = urlsplit(first.headers["location"])
    assert "data=true" in location.query
    return hdfs.request("POST", f"{location.path}?{location.query}", body=data)


def test_append_to_a_published_file_writes_a_new_version_and_keeps_its_pages(
    hdfs: WebHdfsClient, cache: CacheProcess, s3_client, bucket: str
) -> None:
    old, added = os.urandom(200_000), os.urandom(70_000)
    s3_client.put_object(Bucket=bucket, Key="warehouse/log", Body=old)
    assert hdfs.read("/warehouse/log").body == old  # cached now
    reply = append(hdfs, "/warehouse/log", added)
    assert reply.status == 200, reply.body
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/log")["Body"].read() == old + added
    before = s3_bytes_read(cache.webhdfs_url)
    assert hdfs.read("/warehouse/log").body == old + added
    assert hdfs.status("/warehouse/log").json()["FileStatus"]["length"] == 270_000
    assert s3_bytes_read(cache.webhdfs_url) == before  # every page of the new version came from the cache


def test_a_change_builds_on_what_s3_holds_not_on_a_cached_status(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/ledger", Body=b"v1 " * 30_000)
    assert hdfs.read("/warehouse/ledger").body == b"v1 " * 30_000  # its status and pages cached
    newer = b"v2 " * 40_000
    s3_client.put_object(Bucket=bucket, Key="warehouse/ledger", Body=newer)  # within sync_interval: not seen yet
    assert append(hdfs, "/warehouse/ledger", b"tail").status == 200
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/ledger")["Body"].read() == newer + b"tail"
    s3_client.put_object(Bucket=bucket, Key="warehouse/ledger", Body=b"v3 " * 10)
    reply = hdfs.call("POST", "/warehouse/ledger", "TRUNCATE", newlength=6)
    assert reply.status == 200, reply.body
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/ledger")["Body"].read() == b"v3 v3 "


def test_append_to_an_empty_file_and_an_empty_append(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    assert hdfs.create("/warehouse/new", b"").status == 201
    assert append(hdfs, "/warehouse/new", b"").status == 200
    assert append(hdfs, "/warehouse/new", b"abc").status == 200
    assert append(hdfs, "/warehouse/new", b"def").status == 200
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/new")["Body"].read() == b"abcdef"


def test_append_and_truncate_a_staged_file_stay_in_the_cache(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    path = "/warehouse/t/_temporary/0/part-0"
    assert hdfs.create(path, b"hello").status == 201
    assert append(hdfs, path, b" world").status == 200
    assert hdfs.read(path).body == b"hello world"
    reply = hdfs.call("POST", path, "TRUNCATE", newlength=5)
    assert reply.status == 200 and reply.json() == {"boolean": True}
    assert hdfs.read(path).body == b"hello"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="warehouse/t/")


def test_truncate_a_published_file(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=b"0123456789")
    assert hdfs.call("POST", "/warehouse/f", "TRUNCATE", newlength=10).json() == {"boolean": True}
    assert hdfs.call("POST", "/warehouse/f", "TRUNCATE", newlength=4).json() == {"boolean": True}
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/f")["Body"].read() == b"0123"
    assert hdfs.read("/warehouse/f").body == b"0123"
    assert hdfs.call("POST", "/warehouse/f", "TRUNCATE", newlength=0).json() == {"boolean": True}
    assert s3_client.head_object(Bucket=bucket, Key="warehouse/f")["ContentLength"] == 0


def test_concat_appends_the_sources_and_deletes_them(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    for name, body in [("a", b"A"), ("b", b"BB"), ("c", b"CCC")]:
        s3_client.put_object(Bucket=bucket, Key=f"warehouse/d/{name}", Body=body)
    reply = hdfs.call("POST", "/warehouse/d/a", "CONCAT", sources="/warehouse/d/b,/warehouse/d/c")
    assert reply.status == 200, reply.body
    assert hdfs.read("/warehouse/d/a").body == b"ABBCCC"
    assert hdfs.list("/warehouse/d") == ["a"]
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="warehouse/d/")["Contents"]] == [
        "warehouse/d/a"
    ]


def test_bad_changes_get_the_errors_hadoop_expects(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=b"0123456789")
    assert hdfs.mkdirs("/warehouse/dir").status == 200
    for path in ("/warehouse/missing", "/warehouse/dir"):
        assert append(hdfs, path, b"x").exception == "FileNotFoundException"
        assert hdfs.call("POST", path, "TRUNCATE", newlength=0).exception == "FileNotFoundException"
    for params in ({"newlength": 11}, {"newlength": -1}, {"newlength": "x"}, {}):
        reply = hdfs.call("POST", "/warehouse/f", "TRUNCATE", **params)
        assert (reply.status, reply.exception) == (400, "IllegalArgumentException"), params
    assert append(hdfs, "/warehouse/f", b"").status == 200
    reply = hdfs.call("POST", "/warehouse/f", "APPEND", buffersize=-5)
    assert (reply.status, reply.exception) == (400, "IllegalArgumentException")
    for sources in ("", "relative", "/warehouse/f", "/warehouse/missing"):
        reply = hdfs.call("POST", "/warehouse/f", "CONCAT", sources=sources)
        assert reply.exception in ("IllegalArgumentException", "FileNotFoundException"), sources
    assert hdfs.call("PUT", "/warehouse/f", "APPEND").exception == "IllegalArgumentException"  # a POST op
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/f")["Body"].read() == b"0123456789"


def test_a_new_version_keeps_the_objects_metadata(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(
        Bucket=bucket, Key="warehouse/m.csv", Body=b"a,b\n", ContentType="text/csv", Metadata={"team": "etl"}
    )
    assert append(hdfs, "/warehouse/m.csv", b"1,2\n").status == 200
    assert hdfs.call("POST", "/warehouse/m.csv", "TRUNCATE", newlength=6).json() == {"boolean": True}
    head = s3_client.head_object(Bucket=bucket, Key="warehouse/m.csv")
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (6, "text/csv", {"team": "etl"})


def test_concurrent_appends_to_one_file_lose_nothing(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/shared.log", Body=b"")
    lines = [f"line {n}\n".encode() for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda line: append(hdfs, "/warehouse/shared.log", line), lines))
    assert [r.status for r in replies] == [200] * 8
    written = body_of(s3_client, bucket, "warehouse/shared.log")
    assert sorted(written.splitlines(keepends=True)) == sorted(lines)


def body_of(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
