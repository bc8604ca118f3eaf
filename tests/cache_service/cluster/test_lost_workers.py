"""A worker killed is lost to the others, a worker drained has left: every worker's metrics tell them apart
(``lakecache_cluster_worker_lost``, ``lakecache_cluster_lost_capacity_bytes``), which CacheWorkerLost and
CacheCapacityLost read."""

from __future__ import annotations

import time

from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring, worker_id
from tests.support.cachectl import cachectl
from tests.support.metrics import scrape
from tests.support.waiting import wait_until

TIMEOUT = 3.0  # the folder's member_timeout


def lost(worker: CacheProcess) -> dict[str, float]:
    """What ``worker`` exports of the lost workers: each lost id, and their capacity."""
    samples = scrape(worker.webhdfs_url)
    found = {k: v for k, v in samples.items() if k.startswith("lakecache_cluster_worker_lost{")}
    found["capacity"] = samples["lakecache_cluster_lost_capacity_bytes"]
    return found


def test_a_killed_worker_is_lost_to_the_others_until_it_is_back(workers: list[CacheProcess]) -> None:
    victim, others = workers[2], workers[:2]
    capacity = scrape(victim.webhdfs_url)['lakecache_tier_capacity_bytes{tier="disk"}']
    expected = {f'lakecache_cluster_worker_lost{{worker="{worker_id(victim)}"}}': 1, "capacity": capacity}
    assert all(lost(w) == {"capacity": 0} for w in workers)

    victim.kill()

    wait_until(lambda: all(lost(w) == expected for w in others), 20, "the killed worker lost on the others")
    victim.start()  # same disk tier, same id
    wait_until(lambda: all(lost(w) == {"capacity": 0} for w in workers), 30, "no worker lost once it is back")


def test_a_drained_worker_that_stops_is_not_lost(workers: list[CacheProcess]) -> None:
    leaving, staying = workers[2], workers[:2]
    run = cachectl("drain", worker_id(leaving), "--wait", endpoint=staying[0].webhdfs_url, token=staying[0].token)
    assert run.code == 0, run.stderr
    wait_for_ring(staying, 2)

    leaving.stop()
    time.sleep(TIMEOUT * 2)  # well past the member timeout: a killed worker would be lost by now

    assert all(lost(w) == {"capacity": 0} for w in staying)
    assert all(scrape(w.webhdfs_url)['lakecache_cluster_members{state="gone"}'] == 1 for w in staying)
