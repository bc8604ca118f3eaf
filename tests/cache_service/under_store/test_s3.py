"""S3UnderStore against moto's server in a real process, with a fault-injecting proxy for retries and timeouts."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cache_service.config import UnderStoreConfig
from cache_service.errors import StaleObjectError, UnderStoreUnavailableError
from cache_service.under_store.s3 import S3UnderStore
from infra.ports import free_port
from infra.s3_emulator import S3Emulator
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.faulty_proxy import FaultyProxy

MiB = 1024**2


def make_store(endpoint_url: str, **overrides: Any) -> S3UnderStore:
    settings: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "access_key_id": "test",
        "secret_access_key": "test",
        "multipart_threshold": 5 * MiB,
        "multipart_chunksize": 5 * MiB,
        "max_attempts": 3,
        "connect_timeout": 2.0,
        "read_timeout": 10.0,
    }
    return S3UnderStore(UnderStoreConfig(**(settings | overrides)))


@pytest.fixture(scope="module")
def store(s3_emulator: S3Emulator) -> Iterator[S3UnderStore]:
    store = make_store(s3_emulator.endpoint_url)
    yield store
    store.close()


@pytest.fixture
def proxy(s3_emulator: S3Emulator) -> Iterator[FaultyProxy]:
    with FaultyProxy(s3_emulator.endpoint_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def wide_bucket(s3_emulator: S3Emulator) -> Iterator[str]:
    """A bucket whose prefix ``wide/`` holds 1005 objects and 2 subdirectories: more than one listing page."""
    client = s3_emulator.client()
    name = unique_bucket_name("wide")
    client.create_bucket(Bucket=name)
    keys = [f"wide/f{i:04d}" for i in range(1005)] + ["wide/sub1/x", "wide/sub2/y"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=b"x"), keys))
    yield name
    remove_bucket(client, name)


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# --- head and listings ---------------------------------------------------------------------------------------


def test_head_reports_size_unquoted_etag_and_epoch_mtime(store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="dir/obj", Body=b"hello world")

    status = store.head(bucket, "dir/obj")

    assert (status.bucket, status.key, status.size) == (bucket, "dir/obj", 11)
    assert status.etag == hashlib.md5(b"hello world").hexdigest()
    assert abs(status.mtime - time.time()) < 120


def test_head_of_missing_key_is_file_not_found_naming_the_uri(store, bucket):
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/no/such/key"):
        store.head(bucket, "no/such/key")


def test_head_in_missing_bucket_is_file_not_found(store):
    with pytest.raises(FileNotFoundError, match="s3://no-such-bucket-here/k"):
        store.head("no-such-bucket-here", "k")


def test_list_level_separates_objects_from_subdirectories(store, s3_client, bucket):
    for key in ["t/a", "t/b", "t/", "t/d1/x", "t/d2/y/z", "other/z"]:
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    level = store.list_level(bucket, "t/")
    root = store.list_level(bucket, "")

    assert [o.key for o in level.objects] == ["t/a", "t/b"]
    assert level.objects[0].size == 3
    assert level.prefixes == ["t/d1", "t/d2"]
    assert level.has_marker
    assert (root.objects, root.prefixes, root.has_marker) == ([], ["other", "t"], False)


def test_list_level_follows_continuation_pages(store, wide_bucket):
    level = store.list_level(wide_bucket, "wide/")

    assert len(level.objects) == 1005
    assert level.objects[-1].key == "wide/f1004"
    assert level.prefixes == ["wide/sub1", "wide/sub2"]


@pytest.mark.parametrize("limit", [1, 7, 1003])
def test_list_level_returns_at_most_limit_entries(store, wide_bucket, limit):
    level = store.list_level(wide_bucket, "wide/", limit=limit)

    assert len(level.objects) + len(level.prefixes) == limit
    assert [o.key for o in level.objects] == [f"wide/f{i:04d}" for i in range(limit)]


def test_list_level_of_missing_bucket_is_file_not_found(store):
    with pytest.raises(FileNotFoundError, match="no-such-bucket-here"):
        store.list_level("no-such-bucket-here", "")


def test_list_recursive_yields_every_object_in_key_order(store, wide_bucket):
    keys = [status.key for status in store.list_recursive(wide_bucket, "wide/")]

    assert keys == sorted(keys)
    assert len(keys) == 1007
    assert keys[-2:] == ["wide/sub1/x", "wide/sub2/y"]


def test_list_recursive_requests_pages_only_as_they_are_consumed(wide_bucket, proxy):
    store = make_store(proxy.url)

    listing = iter(store.list_recursive(wide_bucket, "wide/"))
    assert proxy.requests_seen == 0
    first = next(listing)

    assert first.key == "wide/f0000"
    assert proxy.requests_seen == 1


# --- ranged reads --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), [(0, 10), (99_990, 100_000), (500, 70_000), (0, 100_000)])
def test_get_range_returns_exactly_the_requested_bytes(store, s3_client, bucket, start, end):
    data = os.urandom(100_000)
    s3_client.put_object(Bucket=bucket, Key="blob", Body=data)
    etag = store.head(bucket, "blob").etag

    assert store.get_range(bucket, "blob", start, end, etag) == data[start:end]


def test_get_range_past_the_end_returns_what_exists(store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="short", Body=b"0123456789")
    etag = store.head(bucket, "short").etag

    assert store.get_range(bucket, "short", 6, 64, etag) == b"6789"


def test_zero_length_range_returns_empty_without_asking_s3(bucket):
    unreachable = make_store(f"http://127.0.0.1:{free_port()}", max_attempts=1)

    assert unreachable.get_range(bucket, "any", 42, 42, "etag") == b""


def test_reversed_range_is_value_error(store, bucket):
    with pytest.raises(ValueError, match="invalid byte range"):
        store.get_range(bucket, "any", 10, 5, "etag")


def test_get_range_of_object_overwritten_since_head_is_stale(store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="table/part-0", Body=b"version one")
    etag = store.head(bucket, "table/part-0").etag
    s3_client.put_object(Bucket=bucket, Key="table/part-0", Body=b"version two")

    with pytest.raises(StaleObjectError, match=f"s3://{bucket}/table/part-0"):
        store.get_range(bucket, "table/part-0", 0, 7, etag)


def test_get_range_of_deleted_object_is_file_not_found(store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="gone", Body=b"bytes")
    etag = store.head(bucket, "gone").etag
    s3_client.delete_object(Bucket=bucket, Key="gone")

    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/gone"):
        store.get_range(bucket, "gone", 0, 5, etag)


# --- writes --------------------------------------------------------------------------------------------------


def test_put_file_below_threshold_is_one_object_with_its_md5_etag(store, s3_client, bucket, tmp_path):
    data = random_file(tmp_path / "small", MiB)

    status = store.put_file(bucket, "out/small", tmp_path / "small")

    assert status.size == MiB
    assert status.etag == hashlib.md5(data).hexdigest()
    assert s3_client.get_object(Bucket=bucket, Key="out/small")["Body"].read() == data


def test_put_file_above_threshold_is_a_multipart_upload_with_identical_bytes(store, s3_client, bucket, tmp_path):
    data = random_file(tmp_path / "big", 12 * MiB)

    status = store.put_file(bucket, "out/big", tmp_path / "big")

    assert status.size == 12 * MiB
    assert status.etag.endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert status == store.head(bucket, "out/big")
    assert s3_client.get_object(Bucket=bucket, Key="out/big")["Body"].read() == data


def test_failed_multipart_upload_is_aborted_and_leaves_no_object(s3_client, bucket, tmp_path, proxy):
    random_file(tmp_path / "big", 12 * MiB)
    proxy.only = lambda method, path: method == "PUT" and "partNumber=2" in path
    proxy.inject(10)
    store = make_store(proxy.url, max_attempts=2)

    with pytest.raises(UnderStoreUnavailableError):
        store.put_file(bucket, "out/big", tmp_path / "big")

    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_put_bytes_writes_and_reports_the_new_object(store, s3_client, bucket):
    status = store.put_bytes(bucket, "k", b"payload")

    assert (status.size, status.etag) == (7, hashlib.md5(b"payload").hexdigest())
    assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"


def test_put_of_empty_file_creates_an_empty_object(store, bucket, tmp_path):
    (tmp_path / "empty").write_bytes(b"")

    assert store.put_file(bucket, "empty", tmp_path / "empty").size == 0


def test_copy_of_small_object_has_same_bytes(store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="src", Body=b"abc" * 1000)

    status = store.copy(bucket, "src", "dst")

    assert status.size == 3000
    assert s3_client.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"abc" * 1000


def test_copy_of_large_object_is_a_multipart_copy_with_same_bytes(store, s3_client, bucket):
    data = os.urandom(12 * MiB)
    s3_client.put_object(Bucket=bucket, Key="big-src", Body=data)

    status = store.copy(bucket, "big-src", "big-dst")

    assert status.size == 12 * MiB
    assert status.etag.endswith("-3")
    assert s3_client.get_object(Bucket=bucket, Key="big-dst")["Body"].read() == data


def test_copy_of_missing_source_is_file_not_found(store, bucket):
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/nothing"):
        store.copy(bucket, "nothing", "dst")


def test_delete_removes_keys_in_batches_and_ignores_missing_ones(s3_client, bucket, proxy):
    keys = [f"del/{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3_client.put_object(Bucket=bucket, Key=key, Body=b""), keys))
    store = make_store(proxy.url)

    store.delete(bucket, (key for key in [*keys, "del/never-existed"]))

    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert proxy.requests_seen == 2  # 1006 keys: one batch of 1000, one of 6


def test_bucket_exists_only_for_existing_buckets(store, bucket):
    assert store.bucket_exists(bucket)
    assert not store.bucket_exists("no-such-bucket-here")


# --- failures of S3 itself -------------------------------------------------------------------------------------


def test_closed_port_is_unavailable_naming_the_endpoint(bucket):
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = make_store(endpoint, max_attempts=2, connect_timeout=0.5, read_timeout=0.5)
    started = time.monotonic()

    with pytest.raises(UnderStoreUnavailableError, match=f"S3 at {endpoint} is unreachable"):
        store.head(bucket, "k")
    assert time.monotonic() - started < 10


def test_get_succeeds_through_slowdowns_within_max_attempts(s3_client, bucket, proxy):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    store = make_store(proxy.url, max_attempts=3)
    proxy.inject(2)

    assert store.get_range(bucket, "k", 2, 6, etag) == b"2345"
    assert (proxy.faults_served, proxy.requests_seen) == (2, 3)


def test_a_body_that_breaks_off_is_resumed_where_it_stopped(s3_client, bucket, proxy):
    data = os.urandom(3 * MiB)
    s3_client.put_object(Bucket=bucket, Key="k", Body=data)
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    store = make_store(proxy.url, max_attempts=3)
    proxy.truncate = MiB + 17
    proxy.inject(1)

    pieces = list(store.stream_range(bucket, "k", 100, len(data), etag, piece=256 * 1024))

    assert b"".join(pieces) == data[100:]
    assert max(map(len, pieces)) <= 256 * 1024
    assert (proxy.faults_served, proxy.requests_seen) == (1, 2)
    proxy.inject(1)
    assert store.get_range(bucket, "k", 5, 2 * MiB, etag) == data[5 : 2 * MiB]


def test_a_body_that_keeps_breaking_off_is_unavailable(s3_client, bucket, proxy):
    s3_client.put_object(Bucket=bucket, Key="k", Body=os.urandom(MiB))
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    store = make_store(proxy.url, max_attempts=2)
    proxy.truncate = 1000
    proxy.inject(5)

    with pytest.raises(UnderStoreUnavailableError, match="broke off at byte 2000"):
        store.get_range(bucket, "k", 0, MiB, etag)
    assert proxy.faults_served == 2


def test_every_retry_is_told_with_its_reason(s3_client, bucket, proxy):
    data = os.urandom(2 * MiB)
    s3_client.put_object(Bucket=bucket, Key="k", Body=data)
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    retries: list[str] = []
    store = S3UnderStore(
        UnderStoreConfig(
            endpoint_url=proxy.url, access_key_id="test", secret_access_key="test", max_attempts=3, read_timeout=0.3
        ),
        on_retry=retries.append,
    )

    proxy.inject(2)  # two 503 SlowDowns, then S3's answer
    assert store.get_range(bucket, "k", 0, 10, etag) == data[:10]
    proxy.status, proxy.code = 500, "InternalError"
    proxy.inject(1)
    assert store.head(bucket, "k").etag == etag
    proxy.truncate = MiB
    proxy.inject(1)
    assert store.get_range(bucket, "k", 0, len(data), etag) == data
    proxy.truncate, proxy.stall = None, 1.0
    proxy.inject(1)
    assert store.head(bucket, "k").size == len(data)
    assert store.get_range(bucket, "k", 0, 10, etag) == data[:10]  # no failure, no retry

    assert retries == ["throttled", "throttled", "server_error", "body_broke_off", "timeout"]


def test_every_attempt_is_told_with_its_outcome(s3_client, bucket, proxy):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    attempts: list[str] = []
    store = S3UnderStore(
        UnderStoreConfig(endpoint_url=proxy.url, access_key_id="test", secret_access_key="test", max_attempts=3),
        on_attempt=attempts.append,
    )

    proxy.inject(2)  # two 503 SlowDowns, then S3's answer
    assert store.get_range(bucket, "k", 0, 4, etag) == b"0123"
    proxy.status, proxy.code = 500, "InternalError"
    proxy.inject(1)
    assert store.head(bucket, "k").etag == etag
    with pytest.raises(FileNotFoundError):
        store.head(bucket, "missing")

    assert attempts == ["throttled", "throttled", "ok", "server_error", "ok", "client_error"]


def test_get_fails_unavailable_when_slowdowns_outlast_max_attempts(s3_client, bucket, proxy):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    store = make_store(proxy.url, max_attempts=3)
    proxy.inject(5)

    with pytest.raises(UnderStoreUnavailableError, match=f"S3 at {proxy.url} is unreachable"):
        store.get_range(bucket, "k", 0, 4, "whatever")
    assert proxy.requests_seen == 3


def test_read_timeouts_are_retried_then_unavailable(s3_client, bucket, proxy):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    store = make_store(proxy.url, max_attempts=2, read_timeout=0.3)
    proxy.stall = 1.0
    proxy.inject(5)

    with pytest.raises(UnderStoreUnavailableError, match="unreachable"):
        store.head(bucket, "k")
    assert proxy.faults_served == 2


def test_access_denied_is_permission_error(bucket, proxy):
    store = make_store(proxy.url)
    proxy.status, proxy.code = 403, "AccessDenied"
    proxy.inject(1)

    with pytest.raises(PermissionError, match=f"s3://{bucket}/k"):
        store.put_bytes(bucket, "k", b"x")
    assert proxy.requests_seen == 1  # a refusal is final, not retried
