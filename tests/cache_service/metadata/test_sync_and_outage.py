"""Metadata sync against a live cache: changes behind its back are seen whole, and warm data survives an S3 outage."""

from __future__ import annotations

import http.client
import time

from infra.s3_emulator import S3Emulator
from tests.support.metrics import s3_bytes_read
from tests.support.webhdfs import WebHdfsClient


def test_change_behind_the_cache_is_seen_whole_after_the_sync_interval(cache_factory, s3_client, bucket: str) -> None:
    cache = cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse"},
        {"metadata": {"sync_interval": "1s"}, "store": {"page_size": "64KiB"}},
    )
    hdfs = WebHdfsClient(cache.webhdfs_url)
    old, new = b"a" * 200_000, b"b" * 150_000
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=old)
    assert hdfs.read("/warehouse/f", offset=0, length=70_000).body == old[:70_000]  # first page cached
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=new)
    # Within the interval the cache still believes in the old version. Its missing pages are fetched on condition
    # of the old ETag, so the read either is the old version whole or is cut short: never new bytes mixed in.
    try:
        within = hdfs.read("/warehouse/f").body
        assert within == old
    except http.client.IncompleteRead as cut:
        assert old.startswith(cut.partial) and b"b" not in cut.partial
    time.sleep(1.2)
    assert hdfs.read("/warehouse/f").body == new


def test_warm_reads_survive_an_s3_outage(cache_factory, tmp_path, bucket: str) -> None:
    with S3Emulator(tmp_path / "own-s3") as emulator:
        client = emulator.client()
        client.create_bucket(Bucket="lake")
        client.put_object(Bucket="lake", Key="warehouse/hot", Body=b"h" * 100_000)
        client.put_object(Bucket="lake", Key="warehouse/cold", Body=b"c" * 100_000)
        cache = cache_factory.__class__(tmp_path / "caches", emulator.endpoint_url)(
            {"/warehouse": "s3://lake/warehouse"},
            {"metadata": {"sync_interval": "5m"}, "under_store": {"max_attempts": 1, "connect_timeout": "1s"}},
        )
        hdfs = WebHdfsClient(cache.webhdfs_url)
        assert hdfs.read("/warehouse/hot").body == b"h" * 100_000
        assert hdfs.list("/warehouse") == ["cold", "hot"]
    try:
        # The emulator is gone: warm metadata and data still answer, without S3.
        assert hdfs.status("/warehouse/hot").status == 200
        assert hdfs.read("/warehouse/hot").body == b"h" * 100_000
        cold = hdfs.read("/warehouse/cold")
        assert cold.status == 503 and cold.exception == "RetriableException"
        assert "unreachable" in cold.json()["RemoteException"]["message"]
        unknown = hdfs.status("/warehouse/never-seen")
        assert unknown.status == 503
        assert hdfs.request("GET", "/healthz").status == 200
        assert s3_bytes_read(cache.webhdfs_url) == 100_000
    finally:
        cache.stop()
