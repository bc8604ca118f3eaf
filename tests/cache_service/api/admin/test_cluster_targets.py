"""``GET /admin/v1/cluster/targets``: Prometheus's HTTP service discovery, answered by real workers from membership."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from infra.cache_process import CacheProcess
from tests.support.caches import CacheFactory
from tests.support.metrics import scrape
from tests.support.waiting import wait_until

CLUSTER = {"cluster": {"heartbeat_interval": "250ms", "member_timeout": "2s"}}


def targets(worker: CacheProcess) -> list[dict[str, Any]]:
    """The worker's answer, read without a token (it is a read)."""
    with urllib.request.urlopen(worker.webhdfs_url + "/admin/v1/cluster/targets", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        groups: list[dict[str, Any]] = json.load(response)
    return groups


def discovered(worker: CacheProcess) -> dict[str, str]:
    """Target address -> worker id, as ``worker`` answers."""
    return {g["targets"][0]: g["labels"]["worker_id"] for g in targets(worker)}


def address(worker: CacheProcess) -> str:
    return urlsplit(worker.webhdfs_url).netloc


def test_a_worker_alone_is_its_own_only_target(cache_factory: CacheFactory, bucket: str) -> None:
    worker = cache_factory({"/lake": f"s3://{bucket}/lake"})
    [group] = targets(worker)
    assert group["targets"] == [address(worker)]
    # Plain labels (HTTP SD refuses __meta_ ones), none that changes over the worker's life or clashes with its own.
    assert set(group["labels"]) == {"worker_id"}
    # The target is where the worker's metrics are, and they name the same worker.
    info = [k for k in scrape("http://" + group["targets"][0]) if k.startswith("lakecache_worker_info{")]
    assert f'worker="{group["labels"]["worker_id"]}"' in info[0]


def test_a_joining_worker_appears_and_a_dead_one_goes_after_member_timeout(
    cache_factory: CacheFactory, bucket: str, redis_url: str
) -> None:
    [first] = cache_factory.cluster(1, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    assert list(discovered(first)) == [address(first)]

    second = cache_factory.join([first])
    for worker in (first, second):  # any worker answers for the whole cluster
        wait_until(lambda w=worker: set(discovered(w)) == {address(first), address(second)}, what="both listed")

    second.kill()  # no goodbye: only the missing heartbeats tell
    wait_until(lambda: set(discovered(first)) == {address(first)}, timeout=15, what="the dead worker dropped")
