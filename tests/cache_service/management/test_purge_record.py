"""A purge explains itself: why it fell short of its target, and the worker's own record of every purge.

Against a real cache worker and the S3 emulator.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

from cache_service.units import format_size
from infra.cache_process import CacheProcess
from tests.support.admin import AdminClient
from tests.support.caches import restart_with_pressure_checks
from tests.support.webhdfs import WebHdfsClient

PAGE = 64 * 1024
KEYS = {
    "time",
    "trigger",
    "dry_run",
    "target",
    "paths",
    "used_bytes_before",
    "used_bytes_after",
    "freed_bytes",
    "reached_target",
    "shortfall",
}


def _cache(cache_factory, bucket: str, disk: str = "2MiB", **store) -> CacheProcess:
    overrides = {"store": {"page_size": "64KiB", "pressure_check_interval": "1h", **store}}
    return cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse", "/raw": f"s3://{bucket}/raw"},
        overrides,
        memory_capacity="512KiB",
        disk_capacity=disk,
    )


def _put(s3_client, bucket: str, key: str, size: int) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))


def _load(admin: AdminClient, *paths: str) -> None:
    assert admin.wait_job(admin.ok("POST", "load", {"paths": list(paths)})["id"])["state"] == "succeeded"


def test_a_path_limited_purge_that_cannot_reach_its_target_says_the_paths_hold_too_little(
    cache_factory, s3_client, bucket
) -> None:
    cache = _cache(cache_factory, bucket)
    _put(s3_client, bucket, "warehouse/a/x", 300_000)
    _put(s3_client, bucket, "warehouse/b/y", 600_000)
    _put(s3_client, bucket, "warehouse/c/z", 100_000)
    _put(s3_client, bucket, "raw/r", 1000)  # never loaded
    admin = AdminClient(cache.webhdfs_url, cache.token)
    _load(admin, "/warehouse")
    for dry_run in (True, False):
        report = admin.ok("POST", "purge", {"target": 0.1, "paths": ["/warehouse/a"], "dry_run": dry_run})
        assert report["reached_target"] is False and report["freed_bytes"] == 300_000
        # 1,000,000 bytes used and 10% of 2 MiB is 209,715: 790,285 to free, and the path held 300,000.
        assert report["shortfall"] == (
            "The path /warehouse/a holds only 293.0 KiB of cached pages; reaching 10% needed 771.8 KiB freed."
        )
        assert report["refused"] == []  # nothing was refused: the paths just hold too little
    both = admin.ok("POST", "purge", {"target": 0.0, "paths": ["/warehouse/b", "/raw"]})
    assert both["reached_target"] is False and both["freed_bytes"] == 600_000
    assert both["shortfall"] == (
        "The paths /warehouse/b and /raw hold only 585.9 KiB of cached pages; reaching 0% needed 683.6 KiB freed."
    )


def test_a_purge_held_back_by_a_pin_and_staged_data_says_how_many_bytes_each_kept(
    cache_factory, s3_client, bucket
) -> None:
    cache = _cache(cache_factory, bucket, disk="8MiB")
    _put(s3_client, bucket, "warehouse/dim/players", 300_000)
    _put(s3_client, bucket, "warehouse/facts/x", 300_000)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.create("/warehouse/facts/_temporary/0/p", b"z" * 5000).status == 201
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.ok("POST", "pin", {"path": "/warehouse/dim"})
    _load(admin, "/warehouse/dim", "/warehouse/facts/x")
    report = admin.ok("POST", "purge", {"target": 0})
    assert report["reached_target"] is False and report["freed_bytes"] == 300_000
    assert report["shortfall"] == (
        "Reaching 0% needed 590.8 KiB freed, but 293.0 KiB is pinned under /warehouse/dim (unpin to let it go) "
        "and 4.9 KiB is staged and not yet in S3 (it goes once its job publishes or deletes it)."
    )
    assert {r["path"] for r in report["refused"]} == {"/", "/warehouse/dim"}
    # A purge of the pinned path alone: the path holds enough, the pin keeps it.
    only_pinned = admin.ok("POST", "purge", {"target": 0, "paths": ["/warehouse/dim"]})
    assert only_pinned["shortfall"] == (
        "The path /warehouse/dim holds only 293.0 KiB of cached pages; reaching 0% needed 297.9 KiB freed, "
        "and of what it holds 293.0 KiB is pinned under /warehouse/dim (unpin to let it go)."
    )
    admin.ok("POST", "unpin", {"path": "/warehouse/dim"})
    done = admin.ok("POST", "purge", {"target": 0.5})
    assert done["reached_target"] is True and done["shortfall"] is None


def test_a_purge_held_back_by_a_read_names_the_page_being_read(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="32MiB")
    size = 12 * 1024**2  # more than the kernel's socket buffers hold: the server must wait for the reader
    _put(s3_client, bucket, "warehouse/big/f", size)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    _load(admin, "/warehouse/big")
    url = urlsplit(cache.webhdfs_url)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect((url.hostname, url.port))
    try:
        reader.sendall(b"GET /webhdfs/v1/warehouse/big/f?op=OPEN&user.name=tester HTTP/1.1\r\nHost: cache\r\n\r\n")
        assert reader.recv(4096).startswith(b"HTTP/1.1 200")
        # The reader stops reading: the server stalls on a page mid-file and holds it while it waits.
        deadline = time.monotonic() + 10
        while True:
            report = admin.ok("POST", "purge", {"target": 0})
            if report["shortfall"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert report["reached_target"] is False
        assert report["shortfall"] == (
            f"Reaching 0% needed {format_size(report['used_bytes_before'])} freed, "
            "but 64.0 KiB is in pages being read (purge again once the reads end)."
        )
        assert [r["path"] for r in report["refused"]] == ["/warehouse/big/f"]
        assert "being read" in report["refused"][0]["reason"]
    finally:
        reader.close()


def test_the_purge_record_lists_purges_newest_first_and_survives_a_restart(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, high_watermark=0.5, low_watermark=0.25)
    for i in range(4):
        _put(s3_client, bucket, f"warehouse/w/f{i}", 400_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    assert admin.ok("GET", "purges") == {"purges": []}
    _load(admin, "/warehouse/w")
    plan = admin.ok("POST", "purge", {"target": 0.6, "dry_run": True})
    # Pressure checks on from the next start: the first check purges from above 50% down to 25%.
    restart_with_pressure_checks(cache)
    done = admin.ok("POST", "purge", {"target": 0.1, "paths": ["/warehouse/w/f0", "/warehouse/w/f1"]})
    cache.stop()
    cache.start()

    purges = admin.ok("GET", "purges")["purges"]
    assert [(p["trigger"], p["dry_run"]) for p in purges] == [("manual", False), ("pressure", False), ("manual", True)]
    assert all(set(p) == KEYS for p in purges)
    manual, pressure, dry = purges
    assert manual["paths"] == ["/warehouse/w/f0", "/warehouse/w/f1"] and manual["target"] == 0.1
    assert manual["freed_bytes"] == done["freed_bytes"] and manual["shortfall"] == done["shortfall"]
    assert manual["reached_target"] is done["reached_target"]
    assert pressure["paths"] is None and pressure["target"] == 0.25
    assert pressure["used_bytes_before"] > 0.5 * 2 * 1024**2 >= 2 * pressure["used_bytes_after"]
    assert pressure["freed_bytes"] > 0 and pressure["reached_target"] is True and pressure["shortfall"] is None
    assert dry["paths"] is None and dry["target"] == 0.6
    assert dry["used_bytes_before"] == plan["used_bytes_before"] == 1_600_000
    assert dry["used_bytes_after"] == plan["used_bytes_after"] and dry["freed_bytes"] == plan["freed_bytes"]
    assert sorted(p["time"] for p in purges) == [p["time"] for p in reversed(purges)]
    assert all(p["time"].endswith("Z") and len(p["time"]) == len("2026-12-05T09:30:00Z") for p in purges)
    assert admin.ok("GET", "purges?limit=1")["purges"] == purges[:1]


def test_status_counts_reads_and_what_each_mount_holds(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="8MiB")
    _put(s3_client, bucket, "warehouse/t/a", 200_000)
    _put(s3_client, bucket, "raw/r", 100_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    status = admin.ok("GET", "status")
    assert status["reads"] == 0 and status["hit_ratio"] == 0.0
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.read("/warehouse/t/a").status == 200
    assert hdfs.read("/warehouse/t/a").status == 200
    assert hdfs.create("/warehouse/t/_temporary/0/p", b"s" * 1000).status == 201
    _load(admin, "/raw")
    status = admin.ok("GET", "status")
    assert status["reads"] >= 8 and 0 < status["hit_ratio"] < 1  # 4 pages missed, then hit
    mounts = {m["path"]: m for m in status["mounts"]}
    assert mounts["/warehouse"]["cached_bytes"] == 200_000 and mounts["/warehouse"]["staged_bytes"] == 1000
    assert mounts["/raw"]["cached_bytes"] == 100_000 and mounts["/raw"]["staged_bytes"] == 0
    assert {"path", "uri", "quota", "used"} <= set(mounts["/raw"])
