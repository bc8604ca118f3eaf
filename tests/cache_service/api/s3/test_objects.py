"""Object operations on the cache's S3 API: one cache shared with WebHDFS, keys kept exactly as S3 keeps them."""

from __future__ import annotations

import datetime
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import s3_client
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.webhdfs import WebHdfsClient


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def test_put_object_is_in_s3_when_acknowledged_and_read_back_from_the_cache(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, prefix: str
) -> None:
    data = os.urandom(200_000)  # four 64 KiB pages, the last one partial
    put = s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/blob", Body=data)
    direct = s3_client.get_object(Bucket=s3_bucket, Key=f"{prefix}/blob")
    assert direct["Body"].read() == data and direct["ETag"] == put["ETag"]
    before = s3_bytes_read(s3_cache.webhdfs_url)
    got = s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/blob")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == len(data) and got["AcceptRanges"] == "bytes"
    assert s3_bytes_read(s3_cache.webhdfs_url) == before, "the upload's pages were cached on the way to S3"
    head = s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/blob")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    assert head["LastModified"] == direct["LastModified"]


def test_put_object_via_s3_is_read_via_webhdfs_without_touching_s3(
    s3, s3_bucket: str, s3_cache: CacheProcess, hdfs: WebHdfsClient, prefix: str
) -> None:
    data = os.urandom(150_000)
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/from-s3.bin", Body=data)
    before = s3_bytes_read(s3_cache.webhdfs_url)
    reply = hdfs.read(f"/{prefix}/from-s3.bin")
    assert reply.status == 200 and reply.body == data
    assert s3_bytes_read(s3_cache.webhdfs_url) == before
    assert hdfs.status(f"/{prefix}/from-s3.bin").json()["FileStatus"]["length"] == len(data)


def test_create_via_webhdfs_is_read_via_s3_without_touching_s3(
    s3, s3_bucket: str, s3_cache: CacheProcess, hdfs: WebHdfsClient, prefix: str
) -> None:
    data = os.urandom(100_000)
    assert hdfs.create(f"/{prefix}/from-hdfs.bin", data).status == 201
    before = s3_bytes_read(s3_cache.webhdfs_url)
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/from-hdfs.bin")["Body"].read() == data
    assert s3_bytes_read(s3_cache.webhdfs_url) == before


def test_object_written_behind_the_cache_is_fetched_once_then_served_from_pages(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, prefix: str
) -> None:
    data = os.urandom(130_000)
    s3_client.put_object(Bucket=s3_bucket, Key=f"{prefix}/direct", Body=data)
    first = s3_bytes_read(s3_cache.webhdfs_url)
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/direct")["Body"].read() == data
    second = s3_bytes_read(s3_cache.webhdfs_url)
    assert second - first == len(data)
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/direct")["Body"].read() == data
    assert s3_bytes_read(s3_cache.webhdfs_url) == second


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=65530-65545", 65530, 65546),  # across a page boundary
        ("bytes=199990-", 199990, 200_000),
        ("bytes=-25", 199_975, 200_000),
        ("bytes=199995-300000", 199995, 200_000),  # clipped at the end
        ("bytes=-500000", 0, 200_000),
    ],
)
def test_range_reads_answer_206_with_content_range(
    s3, s3_bucket: str, prefix: str, header: str, start: int, end: int
) -> None:
    data = os.urandom(200_000)
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/r", Body=data)
    got = s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end - 1}/200000"
    assert got["Body"].read() == data[start:end]
    head = s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/r", Range=header)
    assert head["ContentLength"] == end - start


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0", "bytes=4000-5000"])
def test_unsatisfiable_ranges_are_invalid_range(s3, s3_bucket: str, prefix: str, header: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/small", Body=b"0123456789")
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/small", Range=header)
    assert _code(error) == "InvalidRange"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert error.value.response["Error"]["ActualObjectSize"] == "10"


def test_a_range_of_an_empty_object_is_invalid_range(s3, s3_bucket: str, prefix: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/empty", Body=b"")
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/empty")["Body"].read() == b""
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/empty", Range="bytes=0-")
    assert _code(error) == "InvalidRange"


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-1", "bytes=0-1,3-4", "bytes=abc"])
def test_ranges_s3_cannot_parse_are_ignored(s3, s3_bucket: str, prefix: str, header: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/whole", Body=b"0123456789")
    got = s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/whole", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and got["Body"].read() == b"0123456789"


def test_conditional_reads_answer_304_and_412(s3, s3_bucket: str, prefix: str) -> None:
    key = f"{prefix}/conditional"
    etag = s3.put_object(Bucket=s3_bucket, Key=key, Body=b"v1")["ETag"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    assert s3.get_object(Bucket=s3_bucket, Key=key, IfMatch=etag)["Body"].read() == b"v1"
    assert s3.get_object(Bucket=s3_bucket, Key=key, IfNoneMatch='"other"')["Body"].read() == b"v1"
    assert s3.get_object(Bucket=s3_bucket, Key=key, IfModifiedSince=past)["Body"].read() == b"v1"
    for condition, status in [
        ({"IfMatch": '"other"'}, 412),
        ({"IfUnmodifiedSince": past}, 412),
        ({"IfNoneMatch": etag}, 304),
        ({"IfNoneMatch": "*"}, 304),
        ({"IfModifiedSince": future}, 304),
        ({"IfMatch": etag, "IfUnmodifiedSince": past}, None),  # If-Match wins, as in S3
    ]:
        if status is None:
            assert s3.get_object(Bucket=s3_bucket, Key=key, **condition)["Body"].read() == b"v1"
            continue
        with pytest.raises(ClientError) as error:
            s3.get_object(Bucket=s3_bucket, Key=key, **condition)
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, condition
        if status == 412:
            assert _code(error) == "PreconditionFailed"


def test_missing_keys_are_no_such_key(s3, s3_bucket: str, prefix: str) -> None:
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/nothing")
    assert _code(error) == "NoSuchKey"
    with pytest.raises(ClientError) as error:
        s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/nothing")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_object_is_seen_by_both_protocols_at_once(
    s3, s3_client, s3_bucket: str, hdfs: WebHdfsClient, prefix: str
) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/doomed", Body=b"x")
    assert hdfs.status(f"/{prefix}/doomed").status == 200
    assert s3.delete_object(Bucket=s3_bucket, Key=f"{prefix}/doomed")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert hdfs.status(f"/{prefix}/doomed").status == 404
    with pytest.raises(ClientError):
        s3_client.head_object(Bucket=s3_bucket, Key=f"{prefix}/doomed")
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/doomed")
    assert _code(error) == "NoSuchKey"


def test_delete_objects_deletes_inside_and_outside_mounts(
    s3, s3_client, s3_bucket: str, hdfs: WebHdfsClient, prefix: str
) -> None:
    keys = [f"{prefix}/d{i}" for i in range(5)] + [f"outside-{uuid.uuid4().hex}"]
    for key in keys:
        s3.put_object(Bucket=s3_bucket, Key=key, Body=b"bye")
    assert s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read() == b"bye"  # cached now
    answer = s3.delete_objects(
        Bucket=s3_bucket, Delete={"Objects": [{"Key": k} for k in [*keys, f"{prefix}/never-existed"]]}
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == sorted([*keys, f"{prefix}/never-existed"])
    assert not answer.get("Errors")
    assert hdfs.status(f"/{prefix}").status == 404, "the directory went with its last file"
    for key in keys:
        with pytest.raises(ClientError):
            s3.head_object(Bucket=s3_bucket, Key=key)


def test_copy_object_replaces_what_the_cache_knew_of_the_destination(
    s3, s3_bucket: str, hdfs: WebHdfsClient, prefix: str
) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/src", Body=b"new bytes")
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/dst", Body=b"old")
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/dst")["Body"].read() == b"old"
    copied = s3.copy_object(
        Bucket=s3_bucket, Key=f"{prefix}/dst", CopySource={"Bucket": s3_bucket, "Key": f"{prefix}/src"}
    )
    assert copied["CopyObjectResult"]["ETag"]
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/dst")["Body"].read() == b"new bytes"
    assert hdfs.read(f"/{prefix}/dst").body == b"new bytes"
    outside = f"copies/{uuid.uuid4().hex}"
    s3.copy_object(Bucket=s3_bucket, Key=outside, CopySource={"Bucket": s3_bucket, "Key": f"{prefix}/src"})
    assert s3.get_object(Bucket=s3_bucket, Key=outside)["Body"].read() == b"new bytes"


@pytest.mark.parametrize(
    "name",
    [
        "ünïcödé 文件 😀.txt",
        "with spaces and + & = ? # % ; , characters",
        "x" * 900,  # a long key: with its prefix, close to S3's 1024 bytes
        "tab\there",
        "a//double-slash",
        "trailing-slash/",
        "../escape-attempt",
        "dir/../../../etc/passwd",
        "./dot",
    ],
)
def test_keys_round_trip_exactly_and_stay_in_their_bucket(
    s3, s3_client, s3_bucket: str, prefix: str, name: str
) -> None:
    key = f"{prefix}/{name}"
    body = key.encode()
    s3.put_object(Bucket=s3_bucket, Key=key, Body=body)
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == body, "stored at exactly this key"
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == body
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]]
    assert listed == [key]
    everything = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]]
    assert everything == [key], "no other key was written"
    s3.delete_object(Bucket=s3_bucket, Key=key)
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)


def test_a_key_longer_than_1024_bytes_is_key_too_long(s3, s3_bucket: str) -> None:
    for call in (
        lambda key: s3.put_object(Bucket=s3_bucket, Key=key, Body=b"x"),
        lambda key: s3.get_object(Bucket=s3_bucket, Key=key),
    ):
        with pytest.raises(ClientError) as error:
            call("warehouse/" + "é" * 510)  # 1030 bytes in UTF-8
        assert _code(error) == "KeyTooLongError"


def test_keys_outside_every_mount_are_passed_through(s3, s3_client, s3_bucket: str) -> None:
    key = f"raw/{uuid.uuid4().hex}/data.csv"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"a,b\n1,2\n")
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"a,b\n1,2\n"
    got = s3.get_object(Bucket=s3_bucket, Key=key, Range="bytes=4-")
    assert got["Body"].read() == b"1,2\n" and got["ContentRange"] == "bytes 4-7/8"
    assert s3.head_object(Bucket=s3_bucket, Key=key)["ContentLength"] == 8


def test_metadata_and_content_type_are_kept_in_s3(s3, s3_client, s3_bucket: str, prefix: str) -> None:
    key = f"{prefix}/typed.json"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"{}", ContentType="application/json", Metadata={"owner": "etl"})
    direct = s3_client.head_object(Bucket=s3_bucket, Key=key)
    assert direct["ContentType"] == "application/json" and direct["Metadata"] == {"owner": "etl"}
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"{}"


def test_response_overrides_set_headers(s3, s3_bucket: str, prefix: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/o", Body=b"x")
    got = s3.get_object(
        Bucket=s3_bucket, Key=f"{prefix}/o", ResponseContentType="text/plain", ResponseContentDisposition="inline"
    )
    assert got["ContentType"] == "text/plain" and got["ContentDisposition"] == "inline"


def test_virtual_host_style_addressing_reaches_the_same_objects(s3, s3_virtual, s3_bucket: str, prefix: str) -> None:
    s3_virtual.put_object(Bucket=s3_bucket, Key=f"{prefix}/vhost", Body=b"virtual")
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/vhost")["Body"].read() == b"virtual"
    assert s3_virtual.get_object(Bucket=s3_bucket, Key=f"{prefix}/vhost", Range="bytes=1-3")["Body"].read() == b"irt"
    listed = s3_virtual.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)
    assert [o["Key"] for o in listed["Contents"]] == [f"{prefix}/vhost"]
    s3_virtual.delete_object(Bucket=s3_bucket, Key=f"{prefix}/vhost")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/vhost")


def test_a_client_with_the_wrong_region_is_redirected_by_boto3_like_by_s3(
    s3_cache: CacheProcess, s3_bucket: str, prefix: str
) -> None:
    # The error names the right region; boto3 retries there, exactly as it does against S3.
    client = s3_client(s3_cache.s3_url, region="eu-west-1")
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/redirected", Body=b"ok")
    assert client.get_object(Bucket=s3_bucket, Key=f"{prefix}/redirected")["Body"].read() == b"ok"


def test_requests_are_counted_with_api_s3(s3, s3_bucket: str, s3_cache: CacheProcess, prefix: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/m", Body=b"m")
    s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/m")
    samples = scrape(s3_cache.webhdfs_url)
    assert samples['lakecache_requests_total{api="s3",op="GetObject",status="200"}'] >= 1
    assert samples['lakecache_requests_total{api="s3",op="PutObject",status="200"}'] >= 1
