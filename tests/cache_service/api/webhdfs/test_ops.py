"""The WebHDFS operations Hadoop's client and common tools use, against a real cache worker and S3 emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.support.webhdfs import WebHdfsClient


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse", "/raw": f"s3://{bucket}/raw"}, {"store": {"page_size": "64KiB"}}
    )


@pytest.fixture
def hdfs(cache: CacheProcess) -> WebHdfsClient:
    return WebHdfsClient(cache.webhdfs_url)


def test_json_answers_carry_no_content_type(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/a.txt", Body=b"abc")
    ok, missing = hdfs.status("/warehouse/a.txt"), hdfs.status("/warehouse/nope")
    assert ok.status == 200 and missing.status == 404
    assert "content-type" not in ok.headers and "content-type" not in missing.headers
    assert ok.json()["FileStatus"]["length"] == 3


def test_file_status_of_files_directories_mount_points_and_root(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/dt=1/part-0.parquet", Body=b"x" * 10)
    assert hdfs.status("/warehouse/t/dt=1/part-0.parquet").json()["FileStatus"]["type"] == "FILE"
    assert hdfs.status("/warehouse/t").json()["FileStatus"]["type"] == "DIRECTORY"
    assert hdfs.status("/warehouse").json()["FileStatus"]["type"] == "DIRECTORY"
    assert hdfs.status("/").json()["FileStatus"]["type"] == "DIRECTORY"
    assert hdfs.list("/") == ["raw", "warehouse"]
    missing = hdfs.status("/warehouse/t/dt=2")
    assert missing.status == 404 and missing.exception == "FileNotFoundException"


def test_list_status_merges_s3_and_staged_entries(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/a", Body=b"1")
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/sub/b", Body=b"2")
    assert hdfs.create("/warehouse/t/_temporary/0/part-0", b"staged").status == 201
    assert hdfs.list("/warehouse/t") == ["_temporary", "a", "sub"]
    file_listing = hdfs.call("GET", "/warehouse/t/a", "LISTSTATUS").json()["FileStatuses"]["FileStatus"]
    assert [(s["pathSuffix"], s["type"]) for s in file_listing] == [("", "FILE")]


def test_list_status_batch_pages_with_start_after(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    for i in range(1003):
        s3_client.put_object(Bucket=bucket, Key=f"warehouse/many/f{i:04d}", Body=b"")
    first = hdfs.call("GET", "/warehouse/many", "LISTSTATUS_BATCH").json()["DirectoryListing"]
    names = [s["pathSuffix"] for s in first["partialListing"]["FileStatuses"]["FileStatus"]]
    assert len(names) == 1000 and first["remainingEntries"] == 3
    rest = hdfs.call("GET", "/warehouse/many", "LISTSTATUS_BATCH", startAfter=names[-1]).json()["DirectoryListing"]
    more = [s["pathSuffix"] for s in rest["partialListing"]["FileStatuses"]["FileStatus"]]
    assert more == ["f1000", "f1001", "f1002"] and rest["remainingEntries"] == 0


def test_open_serves_ranges_and_clips_at_the_end(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    data = os.urandom(300_000)  # several 64 KiB pages and a partial last one
    s3_client.put_object(Bucket=bucket, Key="warehouse/blob", Body=data)
    assert hdfs.read("/warehouse/blob").body == data
    for offset, length in [(0, 1), (65535, 2), (65536, 65536), (131000, 100_000), (299_999, 10), (12345, 0)]:
        reply = hdfs.read("/warehouse/blob", offset=offset, length=length)
        assert reply.status == 200 and reply.body == data[offset : offset + length]
    assert hdfs.read("/warehouse/blob", offset=300_000).body == b""
    assert hdfs.read("/warehouse/blob", offset=299_000).body == data[299_000:]


def test_block_locations_cover_the_file(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=b"z" * 1000)
    reply = hdfs.call("GET", "/warehouse/f", "GETFILEBLOCKLOCATIONS", offset=0, length=1000)
    blocks = reply.json()["BlockLocations"]["BlockLocation"]
    assert "content-type" not in reply.headers
    assert [(b["offset"], b["length"]) for b in blocks] == [(0, 1000)]
    assert blocks[0]["hosts"] and blocks[0]["names"] and blocks[0]["storageTypes"] == ["DISK"]


def test_content_summary_checksum_and_home_directory(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/s/a", Body=b"12345")
    s3_client.put_object(Bucket=bucket, Key="warehouse/s/d/b", Body=b"678")
    summary = hdfs.call("GET", "/warehouse/s", "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert (summary["length"], summary["fileCount"], summary["directoryCount"]) == (8, 2, 2)
    checksum = hdfs.call("GET", "/warehouse/s/a", "GETFILECHECKSUM").json()["FileChecksum"]
    assert checksum["length"] == 28 and len(bytes.fromhex(checksum["bytes"])) == 28
    assert checksum["algorithm"] == "MD5-of-0MD5-of-512CRC32C"
    assert hdfs.call("GET", "/", "GETHOMEDIRECTORY").json() == {"Path": "/user/tester"}


def test_create_is_two_step_and_respects_overwrite(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    first = hdfs.call("PUT", "/warehouse/new.txt", "CREATE")
    assert first.status == 307 and "data=true" in first.headers["location"]
    assert hdfs.create("/warehouse/new.txt", b"v1").status == 201
    again = hdfs.create("/warehouse/new.txt", b"v2")
    assert again.status == 403 and again.exception == "FileAlreadyExistsException"
    assert hdfs.create("/warehouse/new.txt", b"v2", overwrite=True).status == 201
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/new.txt")["Body"].read() == b"v2"
    assert hdfs.read("/warehouse/new.txt").body == b"v2"
    no_redirect = hdfs.call("PUT", "/warehouse/other.txt", "CREATE", noredirect=True)
    assert no_redirect.status == 200 and "data=true" in no_redirect.json()["Location"]


def test_create_of_an_empty_file(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    assert hdfs.create("/warehouse/t/_SUCCESS", b"").status == 201
    assert s3_client.head_object(Bucket=bucket, Key="warehouse/t/_SUCCESS")["ContentLength"] == 0


def test_mkdirs_rename_and_delete(hdfs: WebHdfsClient, s3_client, bucket: str) -> None:
    assert hdfs.mkdirs("/warehouse/d1/d2").json() == {"boolean": True}
    assert hdfs.status("/warehouse/d1/d2").json()["FileStatus"]["type"] == "DIRECTORY"
    assert hdfs.create("/warehouse/d1/f", b"data").status == 201
    assert hdfs.rename("/warehouse/d1", "/warehouse/e1").json() == {"boolean": True}
    assert hdfs.read("/warehouse/e1/f").body == b"data"
    assert hdfs.status("/warehouse/d1").status == 404
    assert hdfs.status("/warehouse/e1/d2").json()["FileStatus"]["type"] == "DIRECTORY"
    assert hdfs.rename("/warehouse/missing", "/warehouse/x").json() == {"boolean": False}
    not_empty = hdfs.delete("/warehouse/e1")
    assert not_empty.status == 403 and not_empty.exception == "PathIsNotEmptyDirectoryException"
    assert hdfs.delete("/warehouse/e1", recursive=True).json() == {"boolean": True}
    assert hdfs.delete("/warehouse/e1", recursive=True).json() == {"boolean": False}
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="warehouse/e1").get("KeyCount") == 0


def test_rename_into_an_existing_directory_moves_below_it(hdfs: WebHdfsClient) -> None:
    assert hdfs.create("/warehouse/src.txt", b"s").status == 201
    assert hdfs.mkdirs("/warehouse/target").status == 200
    assert hdfs.rename("/warehouse/src.txt", "/warehouse/target").json() == {"boolean": True}
    assert hdfs.read("/warehouse/target/src.txt").body == b"s"
    assert hdfs.create("/warehouse/other", b"o").status == 201
    assert hdfs.rename("/warehouse/other", "/warehouse/target/src.txt").json() == {"boolean": False}


def test_mount_points_cannot_be_deleted_or_renamed(hdfs: WebHdfsClient) -> None:
    for reply in (hdfs.delete("/warehouse", recursive=True), hdfs.rename("/warehouse", "/raw/w")):
        assert reply.status == 403 and reply.exception == "AccessControlException"
    assert hdfs.status("/warehouse").status == 200


def test_attribute_operations_are_accepted(hdfs: WebHdfsClient) -> None:
    assert hdfs.create("/warehouse/attr", b"a").status == 201
    assert hdfs.call("PUT", "/warehouse/attr", "SETPERMISSION", permission="644").status == 200
    assert hdfs.call("PUT", "/warehouse/attr", "SETOWNER", owner="etl", group="data").status == 200
    assert hdfs.call("PUT", "/warehouse/attr", "SETTIMES", modificationtime=1, accesstime=-1).status == 200
    assert hdfs.call("PUT", "/warehouse/attr", "SETREPLICATION", replication=3).json() == {"boolean": True}
    assert hdfs.call("PUT", "/warehouse/nope", "SETPERMISSION", permission="644").status == 404


def test_unsupported_and_misplaced_operations(hdfs: WebHdfsClient) -> None:
    reply = hdfs.call("GET", "/warehouse", "FROBNICATE")
    assert reply.status == 400 and reply.exception == "UnsupportedOperationException"
    misplaced = hdfs.call("GET", "/warehouse/x", "MKDIRS")
    assert misplaced.status == 400 and misplaced.exception == "IllegalArgumentException"
    assert "PUT" in misplaced.json()["RemoteException"]["message"]
    no_op = hdfs.request("GET", "/webhdfs/v1/warehouse")
    assert no_op.status == 400 and "op" in no_op.json()["RemoteException"]["message"]
