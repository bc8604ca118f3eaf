"""A real Spark standalone cluster whose workers each have a loopback address of their own, with a real cache
worker of the same "node" on each address: scale-in drains the node's cache worker (gone) before its Spark worker is
decommissioned and stopped; scale-out names the new node, whose cache worker is then waited for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cache_ring import wait_for_ring, worker_id
from infra.service_process import is_running
from lakecache_airflow.scaling.cache_nodes import CacheDrainError, CacheJoinTimeoutError
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster, SparkStandaloneScaler
from tests.plugins.lakecache_airflow.scaling.cache_support import (
    NodeCluster,
    Timeline,
    node_addresses,
    node_caches,
    read_all,
    write_objects,
)
from tests.support.caches import CacheFactory

pytestmark = pytest.mark.spark


@pytest.fixture
def spark_nodes(tmp_path: Path) -> Iterator[SparkStandaloneCluster]:
    """A master and two workers, each worker on an address of its own (127.0.<n>.1, 127.0.<n>.2)."""
    cluster = SparkStandaloneCluster(
        tmp_path / "spark",
        worker_hosts=node_addresses(2),
        decommission_timeout=120.0,
        start_timeout=240.0,
    )
    try:
        cluster.start(workers=2)
        yield cluster
    finally:
        cluster.stop()


def alive_at(cluster: SparkStandaloneCluster, host: str) -> bool:
    return any(w.get("host") == host for w in cluster.alive_workers())


def test_scale_in_drains_the_nodes_cache_worker_before_its_spark_worker_stops_and_scale_out_waits_for_one(
    spark_nodes: SparkStandaloneCluster,
    cache_factory: CacheFactory,
    bucket: str,
    redis_url: str,
    s3_emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = spark_nodes.record.worker_hosts
    assert sorted(w["host"] for w in spark_nodes.alive_workers()) == sorted(hosts)
    nodes = NodeCluster(cache_factory, bucket, redis_url)
    first, second = nodes.start(hosts)
    objects = write_objects(bucket, s3_emulator.endpoint_url)
    read_all(first, bucket, objects)
    caches = node_caches(monkeypatch, first, join_timeout=2.0)
    scaler = SparkStandaloneScaler(spark_nodes, cache=caches)
    leaving = max(spark_nodes.workers, key=lambda w: w.started_at)
    assert leaving.host == hosts[1]

    probes = {
        "gone": lambda: nodes.state(second, seen_from=first) == "gone",
        "spark worker leaving": lambda: not alive_at(spark_nodes, hosts[1]),
    }
    with Timeline(probes) as timeline:
        back = scaler.scale_to(1)

    assert (back.before, back.after) == (2, 1)
    assert [(n.name, n.addresses) for n in back.removed] == [(leaving.name, (hosts[1],))]
    assert back.notes[0].startswith(f"drained cache worker {worker_id(second)} on node {leaving.name} in ")
    assert timeline.before("gone", "spark worker leaving"), timeline.first
    assert not is_running(leaving.pid, leaving.marker)
    wait_for_ring([first], 1)
    read_all(first, bucket, objects)
    nodes.workers.remove(second)  # it left the ring (its process runs on until stopped)

    # The last node's cache worker holds the cache: its Spark worker is not stopped.
    with pytest.raises(CacheDrainError, match="scale-in refused: node worker-1 runs w-"):
        scaler.scale_to(0)
    assert alive_at(spark_nodes, hosts[0])

    out = scaler.scale_to(2)
    (new,) = out.added
    assert new.addresses == (hosts[1],) and alive_at(spark_nodes, hosts[1])
    with pytest.raises(CacheJoinTimeoutError, match=rf"no active cache worker on new node {new.name} \({hosts[1]}\)"):
        caches.wait_for_nodes(out.added)
    joined = nodes.add(hosts[1])
    assert caches.wait_for_nodes(out.added, timeout=30) == {new.name: worker_id(joined)}


def test_a_failed_drain_leaves_the_spark_worker_running(
    spark_nodes: SparkStandaloneCluster,
    cache_factory: CacheFactory,
    bucket: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = spark_nodes.record.worker_hosts
    nodes = NodeCluster(cache_factory, bucket, redis_url, member_timeout="60s")
    first, second = nodes.start(hosts)
    dead = worker_id(second)
    second.kill()  # worker-2's cache worker died: still listed active, it cannot take the drain
    scaler = SparkStandaloneScaler(spark_nodes, cache=node_caches(monkeypatch, first))

    with pytest.raises(CacheDrainError, match=f"^draining cache worker {dead} on node worker-2 was refused: "):
        scaler.scale_to(1)

    assert sorted(w["host"] for w in spark_nodes.alive_workers()) == sorted(hosts)
    assert len(spark_nodes.workers) == 2
