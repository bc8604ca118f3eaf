"""``CacheWorkersJoinedTrigger.run()`` driven to its event with asyncio, against a real cache cluster whose workers
live on the addresses of compute nodes (``tests.plugins.lakecache_airflow.scaling.cache_support``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from airflow.triggers.base import TriggerEvent

from infra.cache_ring import worker_id
from infra.ports import free_port
from lakecache_airflow.scaling.base import Node
from lakecache_airflow.triggers.cache_workers import CacheWorkersJoinedTrigger
from tests.plugins.airflow_home import connection_json
from tests.plugins.lakecache_airflow.scaling.cache_support import NodeCluster, node_addresses
from tests.support.caches import CacheFactory

CONN_ID = "lakecache_nodes"


@pytest.fixture
def nodes(cache_factory: CacheFactory, bucket: str, redis_url: str) -> NodeCluster:
    return NodeCluster(cache_factory, bucket, redis_url)


def events(trigger: CacheWorkersJoinedTrigger, timeout: float = 60) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout))


def trigger(nodes: list[Node], seconds: float) -> CacheWorkersJoinedTrigger:
    return CacheWorkersJoinedTrigger(
        nodes=[n.to_json() for n in nodes],
        deadline=time.time() + seconds,
        timeout=seconds,
        lakecache_conn_id=CONN_ID,
        poll_interval=0.2,
    )


def test_serialize_recreates_the_same_trigger() -> None:
    made = trigger([Node("i-1", ("10.0.0.1", "ip-10-0-0-1.ec2.internal"))], 90)
    classpath, kwargs = made.serialize()
    assert classpath == "lakecache_airflow.triggers.cache_workers.CacheWorkersJoinedTrigger"
    json.dumps(kwargs)  # the triggerer stores them as JSON
    assert CacheWorkersJoinedTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_event_names_each_new_nodes_worker_once_it_joins(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = node_addresses(3)
    (first,) = nodes.start(hosts[:1])
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(first))
    new = [Node("i-new-1", (hosts[1],)), Node("i-new-2", (f"ip-{hosts[2]}.internal", hosts[2]))]
    joined = []
    # The nodes' workers start while the trigger already waits, as after a scale-out.
    late = threading.Thread(target=lambda: joined.extend(nodes.add(h, wait=False) for h in hosts[1:]))
    late.start()
    try:
        fired = events(trigger(new, 60))
    finally:
        late.join()

    assert len(fired) == 1
    assert fired[0].payload == {
        "status": "success",
        "joined": {"i-new-1": worker_id(joined[0]), "i-new-2": worker_id(joined[1])},
    }


def test_a_node_without_a_worker_fails_at_the_deadline_naming_it(
    nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = node_addresses(2)
    (first,) = nodes.start(hosts[:1])
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(first))

    (fired,) = events(trigger([Node("i-old", (hosts[0],)), Node("i-missing", (hosts[1],))], 1.0))

    assert fired.payload["status"] == "error"
    assert fired.payload["pending"] == ["i-missing"]  # the node that has its worker is not named
    assert fired.payload["message"].startswith(f"no active cache worker on new node i-missing ({hosts[1]}) after 1s")


def test_a_cache_that_does_not_answer_is_asked_until_the_deadline_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "lakecache", "host": "127.0.0.1", "port": port, "password": "token"}),
    )

    (fired,) = events(trigger([Node("i-new", ("127.0.9.9",))], 1.0))

    assert fired.payload["status"] == "error"
    assert "(last look: cannot read the cache cluster: " in fired.payload["message"]
