"""Warmup, purge under pressure, pins, TTLs and quotas against a real cache and S3 emulator."""

from __future__ import annotations

import os
import threading
import time

from infra.cache_process import CacheProcess
from tests.support.admin import AdminClient
from tests.support.caches import restart_with_pressure_checks
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.webhdfs import WebHdfsClient

PAGE = 64 * 1024


def _cache(cache_factory, bucket: str, disk: str = "2MiB", memory: str = "512KiB", **store) -> CacheProcess:
    overrides = {
        "store": {
            "page_size": "64KiB",
            "pressure_check_interval": store.pop("pressure_check_interval", "1h"),
            **store,
        },
    }
    return cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse", "/raw": f"s3://{bucket}/raw"},
        overrides,
        memory_capacity=memory,
        disk_capacity=disk,
    )


def _put(s3_client, bucket: str, key: str, size: int) -> bytes:
    data = os.urandom(size)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    return data


def test_warmup_loads_directories_and_globs_then_serves_without_s3(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="16MiB")
    files = {
        f"warehouse/events/dt=2026-11-0{d}/part-{p}": _put(
            s3_client, bucket, f"warehouse/events/dt=2026-11-0{d}/part-{p}", 150_000
        )
        for d in (1, 2)
        for p in (0, 1)
    }
    admin = AdminClient(cache.webhdfs_url, cache.token)
    job = admin.ok("POST", "load", {"paths": ["/warehouse/events/dt=2026-11-01", "/warehouse/events/dt=*-02/part-1"]})
    done = admin.wait_job(job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"]["files_total"] == 3 and done["progress"]["files_done"] == 3
    assert done["progress"]["bytes_done"] == done["progress"]["bytes_total"] == 450_000
    before = s3_bytes_read(cache.webhdfs_url)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    for key in ("warehouse/events/dt=2026-11-01/part-0", "warehouse/events/dt=2026-11-02/part-1"):
        assert hdfs.read("/" + key).body == files[key]
    assert s3_bytes_read(cache.webhdfs_url) == before
    again = admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/events/dt=2026-11-01"]})["id"])
    assert again["progress"]["bytes_from_s3"] == 0 and again["progress"]["bytes_skipped"] == 300_000


def test_warmup_past_capacity_completes_and_never_overfills(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="1MiB", memory="256KiB")
    for i in range(6):
        _put(s3_client, bucket, f"warehouse/big/f{i}", 400_000)  # 2.4 MB into a 1 MiB disk tier
    admin = AdminClient(cache.webhdfs_url, cache.token)
    done = admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/big"], "parallelism": 4})["id"])
    assert done["state"] == "succeeded" and done["progress"]["bytes_done"] == 2_400_000
    status = admin.ok("GET", "status")
    disk = next(t for t in status["tiers"] if t["medium"] == "disk")
    assert 0 < disk["used_bytes"] <= disk["capacity_bytes"] == 1024**2
    assert scrape(cache.webhdfs_url)['lakecache_evictions_total{reason="capacity",tier="disk"}'] > 0


def test_warmup_job_runs_on_after_its_client_leaves_and_can_be_cancelled(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="64MiB", memory="1MiB")
    _put(s3_client, bucket, "warehouse/slow/a", 4 * 1024**2)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    # 64 KiB/s: the job outlives the request that started it by far.
    job = admin.ok("POST", "load", {"paths": ["/warehouse/slow"], "bandwidth": 65536, "parallelism": 1})
    time.sleep(0.5)
    running = admin.ok("GET", f"jobs/{job['id']}")
    assert running["state"] == "running" and 0 < running["progress"]["bytes_done"] < 4 * 1024**2
    assert running["progress"]["eta_seconds"] and running["progress"]["eta_seconds"] > 1
    cancelled = admin.ok("DELETE", f"jobs/{job['id']}")
    assert cancelled["state"] == "cancelled"


def test_warmup_of_missing_paths_and_empty_globs_is_refused(cache_factory, bucket) -> None:
    cache = _cache(cache_factory, bucket)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    for paths, field in ((["/warehouse/none"], "paths[0]"), (["/warehouse", "/warehouse/x*"], "paths[1]")):
        status, body = admin.call("POST", "load", {"paths": paths})
        assert status == 404 and body["error"]["field"] == field, body


def test_free_drops_pages_but_refuses_staged_data(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="16MiB")
    _put(s3_client, bucket, "warehouse/t/a", 200_000)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.read("/warehouse/t/a").status == 200
    assert hdfs.create("/warehouse/t/_temporary/0/part-0", b"s" * 1000).status == 201
    admin = AdminClient(cache.webhdfs_url, cache.token)
    report = admin.ok("POST", "free", {"paths": ["/warehouse/t"]})
    assert report["freed_bytes"] == 200_000
    assert [r["path"] for r in report["refused"]] == ["/warehouse/t/_temporary/0/part-0"]
    assert admin.ok("GET", "stat?path=/warehouse/t/a")["cached_bytes"] == 0
    assert hdfs.read("/warehouse/t/_temporary/0/part-0").body == b"s" * 1000


def test_purge_dry_run_changes_nothing_then_purge_reaches_the_target(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="2MiB")
    for i in range(6):
        _put(s3_client, bucket, f"warehouse/p/f{i}", 300_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/p"]})["id"])
    used = admin.ok("GET", "status")["used_bytes"]
    plan = admin.ok("POST", "purge", {"target": 0.25, "dry_run": True})
    assert plan["dry_run"] and plan["freed_bytes"] > 0 and plan["evicted"]
    assert all(e["path"].startswith("/warehouse/p/") for e in plan["evicted"])
    assert admin.ok("GET", "status")["used_bytes"] == used
    done = admin.ok("POST", "purge", {"target": 0.25})
    assert done["reached_target"] and done["used_bytes_after"] <= 0.25 * 2 * 1024**2
    assert done["freed_bytes"] == plan["freed_bytes"]
    assert scrape(cache.webhdfs_url)['lakecache_purge_runs_total{trigger="manual"}'] == 1


def test_purge_to_zero_keeps_pinned_pages_and_staged_data(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="8MiB")
    pinned = _put(s3_client, bucket, "warehouse/dim/players", 300_000)
    _put(s3_client, bucket, "warehouse/facts/x", 300_000)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.create("/warehouse/facts/_temporary/0/p", b"z" * 5000).status == 201
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.ok("POST", "pin", {"path": "/warehouse/dim"})
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/dim", "/warehouse/facts/x"]})["id"])
    report = admin.ok("POST", "purge", {"target": 0})
    assert not report["reached_target"]
    assert report["refused"] and "staged" in report["refused"][0]["reason"]
    assert admin.ok("GET", "stat?path=/warehouse/dim/players")["cached_bytes"] == 300_000
    assert admin.ok("GET", "stat?path=/warehouse/facts/x")["cached_bytes"] == 0
    status = admin.ok("GET", "status")
    assert status["pinned_bytes"] == 300_000 and status["staged_bytes"] == 5000
    before = s3_bytes_read(cache.webhdfs_url)
    assert hdfs.read("/warehouse/dim/players").body == pinned
    assert s3_bytes_read(cache.webhdfs_url) == before
    assert hdfs.read("/warehouse/facts/_temporary/0/p").body == b"z" * 5000
    admin.ok("POST", "unpin", {"path": "/warehouse/dim"})
    assert admin.ok("POST", "purge", {"target": 0})["freed_bytes"] == 300_000


def test_readers_during_a_purge_never_fail_or_see_wrong_bytes(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="4MiB", memory="512KiB")
    blobs = {f"/warehouse/r/f{i}": _put(s3_client, bucket, f"warehouse/r/f{i}", 250_000) for i in range(8)}
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/r"]})["id"])
    failures: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader(seed: int) -> None:
        nonlocal reads
        hdfs = WebHdfsClient(cache.webhdfs_url)
        i = seed
        while not stop.is_set():
            path = f"/warehouse/r/f{i % 8}"
            offset = (i * 37_000) % 200_000
            reply = hdfs.read(path, offset=offset, length=40_000)
            if reply.status != 200 or reply.body != blobs[path][offset : offset + 40_000]:
                failures.append(f"{path}@{offset}: {reply.status}")
            reads += 1
            i += 3

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for target in (0.5, 0.1, 0.0, 0.3, 0.0):
            admin.ok("POST", "purge", {"target": target})
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert reads > 20
    assert failures == []


def test_pressure_above_the_high_watermark_purges_to_the_low_one(cache_factory, s3_client, bucket) -> None:
    # Fill above the high watermark with pressure checks off, then restart with them on: the first check purges.
    # (With checks on during the load, a round could fire mid-load and leave usage between the watermarks.)
    cache = _cache(cache_factory, bucket, disk="2MiB", high_watermark=0.5, low_watermark=0.25)
    for i in range(4):
        _put(s3_client, bucket, f"warehouse/w/f{i}", 400_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/w"]})["id"])
    assert admin.ok("GET", "status")["used_bytes"] > 0.5 * 2 * 1024**2
    restart_with_pressure_checks(cache)
    assert admin.ok("GET", "status")["used_bytes"] <= 0.25 * 2 * 1024**2
    assert scrape(cache.webhdfs_url)['lakecache_evictions_total{reason="pressure",tier="disk"}'] > 0


def test_ttl_frees_cached_pages_but_never_s3_data(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket, disk="8MiB", pressure_check_interval="200ms")
    data = _put(s3_client, bucket, "warehouse/tmp/x", 100_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/tmp"]})["id"])
    status, body = admin.call("POST", "ttl", {"path": "/warehouse/tmp", "ttl": -1})
    assert status == 400 and body["error"]["field"] == "ttl"
    admin.ok("POST", "ttl", {"path": "/warehouse/tmp", "ttl": "1s"})
    assert admin.ok("GET", "stat?path=/warehouse/tmp/x")["ttl_seconds"] == 1.0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and admin.ok("GET", "stat?path=/warehouse/tmp/x")["cached_bytes"]:
        time.sleep(0.1)
    assert admin.ok("GET", "stat?path=/warehouse/tmp/x")["cached_bytes"] == 0
    assert s3_client.get_object(Bucket=bucket, Key="warehouse/tmp/x")["Body"].read() == data


def test_mount_quota_caps_its_share_of_the_disk_tier(cache_factory, s3_client, bucket) -> None:
    cache = cache_factory(
        [("/warehouse", f"s3://{bucket}/warehouse")],
        {
            "mounts": [{"path": "/warehouse", "uri": f"s3://{bucket}/warehouse", "quota": {"disk": "512KiB"}}],
            "store": {"page_size": "64KiB"},
        },
        disk_capacity="8MiB",
    )
    for i in range(4):
        _put(s3_client, bucket, f"warehouse/q/f{i}", 300_000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/q"]})["id"])
    mount = next(m for m in admin.ok("GET", "mounts")["mounts"] if m["path"] == "/warehouse")
    assert mount["quota"]["disk"] == 512 * 1024
    assert 0 < mount["used"]["disk"] <= 512 * 1024
    assert scrape(cache.webhdfs_url)['lakecache_evictions_total{reason="quota",tier="disk"}'] > 0


def test_pins_survive_a_restart(cache_factory, s3_client, bucket) -> None:
    cache = _cache(cache_factory, bucket)
    _put(s3_client, bucket, "warehouse/keep/x", 1000)
    admin = AdminClient(cache.webhdfs_url, cache.token)
    admin.ok("POST", "pin", {"path": "/warehouse/keep"})
    cache.stop()
    cache.start()
    assert admin.ok("GET", "pins") == {"pins": ["/warehouse/keep"]}
    assert admin.ok("GET", "stat?path=/warehouse/keep/x")["pinned"] is True
