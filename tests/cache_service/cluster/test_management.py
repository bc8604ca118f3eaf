"""Management asked of any worker acts on the whole cluster: pins and TTLs are the cluster's, and free, purge and the
TTL sweep run on every worker, with one merged answer."""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

from infra.cache_process import CacheProcess
from tests.cache_service.cluster.conftest import CLUSTER
from tests.cache_service.cluster.test_handoff import data_set, post
from tests.support.cachectl import cachectl
from tests.support.caches import CacheFactory
from tests.support.metrics import scrape
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(worker: CacheProcess, route: str) -> Any:
    with NO_PROXY.open(f"{worker.webhdfs_url}/admin/v1/{route}", timeout=10) as response:
        return json.load(response)


def pages(worker: CacheProcess) -> float:
    return scrape(worker.webhdfs_url)['lakecache_tier_pages{tier="disk"}']


def warm(workers: list[CacheProcess], s3_client: S3Client, bucket: str) -> int:
    objects = data_set(s3_client, bucket)
    run = cachectl("load", "/lake/set", "--wait", "--json", endpoint=workers[0].webhdfs_url, token=workers[0].token)
    assert run.json()["state"] == "succeeded"
    return sum(len(d) for d in objects.values())


def test_pins_and_ttls_set_through_one_worker_hold_on_every_worker(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data_set(s3_client, bucket)
    assert post(workers[0], "pin", {"path": "/lake/set/part-0.bin"})[0] == 200
    assert post(workers[1], "ttl", {"path": "/lake/set", "ttl": "1h"})[0] == 200

    for worker in workers:
        wait_until(lambda w=worker: get(w, "pins")["pins"] == ["/lake/set/part-0.bin"])
        wait_until(lambda w=worker: get(w, "ttl")["ttls"] == {"/lake/set": 3600.0})
    assert post(workers[2], "unpin", {"path": "/lake/set/part-0.bin"})[0] == 200
    for worker in workers:
        wait_until(lambda w=worker: get(w, "pins")["pins"] == [])


def test_free_through_one_worker_drops_the_pages_on_every_owner(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    total = warm(workers, s3_client, bucket)

    status, report = post(workers[2], "free", {"paths": ["/lake/set"]})

    assert status == 200, report
    assert report["freed_bytes"] == total and report["unreachable"] == {}
    assert sorted(report["workers"]) == sorted(get(w, "cluster")["worker"] for w in workers)
    assert [pages(w) for w in workers] == [0, 0, 0]


def test_a_purge_through_one_worker_respects_a_pin_set_through_another(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    total = warm(workers, s3_client, bucket)
    assert post(workers[2], "pin", {"path": "/lake/set/part-0.bin"})[0] == 200
    for worker in workers:
        wait_until(lambda w=worker: get(w, "pins")["pins"] == ["/lake/set/part-0.bin"])

    status, report = post(workers[0], "purge", {"target": 0})

    assert status == 200, report
    assert report["freed_bytes"] == total - (8 << 20)  # every page but the pinned file's 8
    assert report["used_bytes_after"] == 8 << 20 and not report["reached_target"]
    assert "pinned" in report["shortfall"]
    assert sum(pages(w) for w in workers) == 8
    assert {e["path"] for e in report["evicted"]} == {"/lake/set/part-1.bin", "/lake/set/part-2.bin"}


def test_a_local_purge_acts_on_the_worker_asked_only(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    warm(workers, s3_client, bucket)
    held = [pages(w) for w in workers]

    status, report = post(workers[1], "purge", {"target": 0, "local": True})

    assert status == 200 and "workers" not in report
    assert [pages(w) for w in workers] == [held[0], 0, held[2]]


def test_a_mount_quota_in_bytes_is_the_clusters_split_among_its_workers(
    cache_factory: CacheFactory, redis_url: str, s3_client: S3Client, bucket: str
) -> None:
    mount = {"path": "/lake", "uri": f"s3://{bucket}/lake", "quota": {"disk": "6MiB"}}
    workers = cache_factory.cluster(3, [("/lake", f"s3://{bucket}/lake")], redis_url, CLUSTER | {"mounts": [mount]})
    total = warm(workers, s3_client, bucket)  # 24 MiB through a 6 MiB quota

    held = [pages(w) for w in workers]
    assert all(0 < n <= 2 for n in held), held  # 2 MiB each: the cluster holds at most its 6 MiB
    assert total == 24 << 20
    quotas = [next(m for m in get(w, "mounts")["mounts"] if m["path"] == "/lake")["quota"]["disk"] for w in workers]
    assert quotas == [2 << 20] * 3
