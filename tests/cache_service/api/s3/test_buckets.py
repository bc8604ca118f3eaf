"""Bucket operations and listings on the cache's S3 API: S3's answers, seen through the cache, writes included."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import signed
from tests.support.buckets import unique_bucket_name


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def test_list_buckets_head_bucket_and_location(s3, s3_virtual, s3_bucket: str) -> None:
    assert s3_bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=s3_bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3_virtual.head_bucket(Bucket=s3_bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=s3_bucket)["LocationConstraint"] in (None, "us-east-1")
    with pytest.raises(ClientError) as error:
        s3.head_bucket(Bucket=unique_bucket_name("missing"))
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_create_and_delete_bucket_are_passed_through(s3, s3_client) -> None:
    name = unique_bucket_name("created")
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    with pytest.raises(ClientError) as error:
        s3.delete_bucket(Bucket=name)
    assert _code(error) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as error:
        s3.list_objects_v2(Bucket=name)
    assert _code(error) == "NoSuchBucket"


@pytest.fixture
def tree(s3, s3_bucket: str, prefix: str) -> list[str]:
    keys = [f"{prefix}/{name}" for name in ["a", "b/1", "b/2", "c/x/1", "d", "e"]]
    for key in keys:
        s3.put_object(Bucket=s3_bucket, Key=key, Body=b"t")
    return keys


def test_list_objects_v2_with_prefix_and_delimiter_sees_writes_at_once(
    s3, s3_bucket: str, prefix: str, tree: list[str]
) -> None:
    page = s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == [f"{prefix}/a", f"{prefix}/d", f"{prefix}/e"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == [f"{prefix}/b/", f"{prefix}/c/"]
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/f", Body=b"new")
    again = s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/", Delimiter="/")
    assert f"{prefix}/f" in [o["Key"] for o in again["Contents"]]


def test_list_objects_v2_pages_with_max_keys_continuation_and_start_after(
    s3, s3_bucket: str, prefix: str, tree: list[str]
) -> None:
    first = s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix, MaxKeys=2)
    assert first["IsTruncated"] and first["KeyCount"] == 2
    rest = s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix, ContinuationToken=first["NextContinuationToken"])
    assert [o["Key"] for o in first["Contents"] + rest["Contents"]] == tree
    after = s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix, StartAfter=f"{prefix}/c/x/1")
    assert [o["Key"] for o in after["Contents"]] == [f"{prefix}/d", f"{prefix}/e"]
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix=prefix, PaginationConfig={"PageSize": 4}
    )
    assert [o["Key"] for page in pages for o in page["Contents"]] == tree


def test_list_objects_v1_with_marker(s3, s3_bucket: str, prefix: str, tree: list[str]) -> None:
    first = s3.list_objects(Bucket=s3_bucket, Prefix=prefix, MaxKeys=3)
    assert [o["Key"] for o in first["Contents"]] == tree[:3] and first["IsTruncated"]
    rest = s3.list_objects(Bucket=s3_bucket, Prefix=prefix, Marker=tree[2])
    assert [o["Key"] for o in rest["Contents"]] == tree[3:]


def test_listing_keys_that_need_url_encoding(s3, s3_bucket: str, prefix: str) -> None:
    key = f"{prefix}/sp ace/ü&<>.txt"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/sp ace/")["Contents"]] == [key]


@pytest.mark.parametrize(
    ("query", "code"),
    [("list-type=2&max-keys=-1", "InvalidArgument"), ("list-type=2&max-keys=ten", "InvalidArgument"),
     ("list-type=2&encoding-type=base64", "InvalidArgument"), ("list-type=3", "InvalidArgument")],
)  # fmt: skip
def test_bad_listing_parameters_are_invalid_argument(
    s3_cache: CacheProcess, s3_bucket: str, query: str, code: str
) -> None:
    reply = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}?{query}")
    assert reply.status == 400 and reply.code == code, reply.body
