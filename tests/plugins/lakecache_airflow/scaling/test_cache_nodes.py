"""``NodeCaches`` and ``CacheHook.drain`` against real cache workers in a cluster on real Redis, each worker on a
loopback address of its own as if on a node of its own."""

from __future__ import annotations

import pytest

from infra.cache_ring import wait_for_ring, worker_id
from lakecache_airflow.scaling.base import Node
from lakecache_airflow.scaling.cache_nodes import CacheDrainError, CacheJoinTimeoutError, LastCacheWorkerError
from tests.plugins.lakecache_airflow.scaling.cache_support import (
    NodeCluster,
    node_addresses,
    node_caches,
    read_all,
    write_objects,
)
from tests.support.caches import CacheFactory


@pytest.fixture
def nodes(cache_factory: CacheFactory, bucket: str, redis_url: str) -> NodeCluster:
    return NodeCluster(cache_factory, bucket, redis_url)


def test_the_worker_advertising_a_nodes_address_is_drained_and_gone_and_reads_keep_working(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch, s3_emulator
) -> None:
    hosts = node_addresses(3)
    first, second, third = nodes.start(hosts)
    objects = write_objects(nodes.bucket, s3_emulator.endpoint_url)
    read_all(first, nodes.bucket, objects)
    caches = node_caches(monkeypatch, first)

    notes = caches.drain_nodes([Node("i-third", (hosts[2], "ip-unused.internal"))])

    assert len(notes) == 1 and notes[0].startswith(f"drained cache worker {worker_id(third)} on node i-third in ")
    assert "left the ring" in notes[0]
    assert nodes.state(third, seen_from=first) == "gone"
    assert nodes.state(second, seen_from=first) == "active"
    wait_for_ring([first, second], 2)
    read_all(second, nodes.bucket, objects)
    read_all(first, nodes.bucket, objects)


def test_a_node_without_a_cache_worker_is_noted_and_nothing_is_drained(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = nodes.start(node_addresses(2))
    notes = node_caches(monkeypatch, first).drain_nodes([Node("worker-9", ("127.0.0.99",))])
    assert notes == ["node worker-9 runs no active cache worker: nothing to drain"]
    assert nodes.state(second, seen_from=first) == "active" and nodes.state(first, seen_from=second) == "active"


def test_removing_the_nodes_of_every_active_worker_is_refused_and_drains_nothing(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = node_addresses(2)
    first, second = nodes.start(hosts)
    caches = node_caches(monkeypatch, first)
    with pytest.raises(LastCacheWorkerError) as refused:
        caches.drain_nodes([Node("worker-1", (hosts[0],)), Node("worker-2", (hosts[1],))])
    message = str(refused.value)
    assert message.startswith("scale-in refused: nodes worker-1, worker-2 run ")
    assert "the last active cache workers; removing them would leave the cache with no worker" in message
    assert "\n" not in message
    assert nodes.state(first, seen_from=second) == "active" and nodes.state(second, seen_from=first) == "active"


def test_a_worker_that_cannot_take_its_drain_stops_the_drains_and_is_reported(
    cache_factory: CacheFactory, bucket: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = NodeCluster(cache_factory, bucket, redis_url, member_timeout="60s")
    hosts = node_addresses(3)
    first, second, third = nodes.start(hosts)
    dead = worker_id(second)
    second.kill()  # listed active for a minute more, but nobody answers there

    with pytest.raises(CacheDrainError) as failed:
        node_caches(monkeypatch, first).drain_nodes([Node("i-2", (hosts[1],)), Node("i-3", (hosts[2],))])

    message = str(failed.value)
    assert message.startswith(f"draining cache worker {dead} on node i-2 was refused: "), message
    assert f"Unavailable: worker {dead} did not take the drain" in message
    assert nodes.state(third, seen_from=first) == "active"  # the next node's worker was not drained


def test_a_drain_refused_by_the_cache_is_reported_with_its_reason(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = node_addresses(2)
    first, second = nodes.start(hosts)
    hook = node_caches(monkeypatch, first).admin
    job = hook.drain(worker_id(second))
    assert job["worker"] == worker_id(second) and job["job_url"].startswith(second.webhdfs_url)
    assert hook.wait_for_drain(job, poll_interval=0.2, timeout=30)["state"] == "succeeded"
    wait_for_ring([first], 1)
    # The cluster's own refusal, as the hook reports it: the last active worker cannot be drained.
    with pytest.raises(Exception, match=r"Conflict: worker w-[0-9a-f]+ is the last active worker"):
        hook.drain(worker_id(first))


def test_a_new_nodes_worker_is_waited_for_and_a_missing_one_times_out_naming_the_node(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = node_addresses(3)
    (first,) = nodes.start(hosts[:1])
    caches = node_caches(monkeypatch, first)
    with pytest.raises(CacheJoinTimeoutError) as late:
        caches.wait_for_nodes([Node("i-new", (hosts[1],))], timeout=1.0)
    assert str(late.value).startswith(f"no active cache worker on new node i-new ({hosts[1]}) after 1s: start a")

    joined = nodes.add(hosts[1])
    assert caches.wait_for_nodes([Node("i-new", (hosts[1],))], timeout=30) == {"i-new": worker_id(joined)}
