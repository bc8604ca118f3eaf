"""A cache cluster whose workers live on the addresses of compute nodes, and a watch on what happens in which order.

Every address of 127.0.0.0/8 is this machine, so a worker bound to 127.0.1.5 is "the cache worker of the node whose
address is 127.0.1.5", as a worker on an EC2 instance advertises the instance's private IP.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring, worker_id
from infra.s3_emulator import s3_client as emulator_client
from infra.toml_writer import merge
from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.scaling.cache_nodes import NodeCaches
from tests.cache_service.cluster.conftest import CLUSTER
from tests.plugins.airflow_home import connection_json
from tests.support.caches import CacheFactory

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NodeCluster:
    """Cache workers started on given addresses, sharing ``redis_url`` and one admin token; mounting ``/lake``.

    ``member_timeout`` is how long a killed worker stays listed active (the tests' usual 3 s, or longer to drain
    one that no longer answers).
    """

    def __init__(self, factory: CacheFactory, bucket: str, redis_url: str, *, member_timeout: str = "3s") -> None:
        self.factory = factory
        self.bucket = bucket
        self.token = secrets.token_urlsafe(24)
        cluster = {"redis_url": redis_url, "member_timeout": member_timeout}
        self.config = merge(CLUSTER, {"cluster": cluster})
        self.workers: list[CacheProcess] = []

    def start(self, hosts: Iterable[str]) -> list[CacheProcess]:
        """A worker on each of ``hosts``; returns once every worker sees all of them active."""
        started = [self.add(host, wait=False) for host in hosts]
        wait_for_ring(self.workers, len(self.workers))
        return started

    def add(self, host: str, *, wait: bool = True) -> CacheProcess:
        """One more worker, on ``host`` (a new node's cache worker joining)."""
        worker = self.factory({"/lake": f"s3://{self.bucket}/lake"}, self.config, admin_token=self.token, host=host)
        self.workers.append(worker)
        if wait:
            wait_for_ring(self.workers, len(self.workers))
        return worker

    def state(self, worker: CacheProcess, seen_from: CacheProcess) -> str:
        """``worker``'s state as ``seen_from`` lists it."""
        me = worker_id(worker)
        return next((m["state"] for m in cluster_report(seen_from)["members"] if m["id"] == me), "absent")


def node_caches(
    monkeypatch: pytest.MonkeyPatch, worker: CacheProcess, *, conn_id: str = "lakecache_nodes", **options: Any
) -> NodeCaches:
    """``NodeCaches`` over a ``CacheHook`` whose connection (from the environment) names ``worker``."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(worker))
    return NodeCaches(CacheHook(conn_id), **{"poll_interval": 0.2, "drain_timeout": 60.0, **options})


def node_addresses(count: int) -> list[str]:
    """``count`` loopback addresses of a /24 no other test of this run uses (127.0.<random>.1..count)."""
    third = random.randint(16, 250)
    return [f"127.0.{third}.{n}" for n in range(1, count + 1)]


def write_objects(bucket: str, s3_endpoint: str, count: int = 3, size: int = 2 << 20) -> dict[str, bytes]:
    """``count`` objects of random bytes under ``lake/set/``."""
    client = emulator_client(s3_endpoint)
    written = {}
    for n in range(count):
        key = f"lake/set/part-{n}.bin"
        written[key] = os.urandom(size)
        client.put_object(Bucket=bucket, Key=key, Body=written[key])
    return written


def read_all(worker: CacheProcess, bucket: str, objects: dict[str, bytes]) -> None:
    """Read every object through ``worker``'s S3 API and check its bytes."""
    client = emulator_client(worker.s3_url)
    for key, data in objects.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


class Timeline:
    """Polls ``probes`` (name -> a function returning True once the thing happened) every 50 ms in a thread, and
    records when each first became true: which happened first is then an observed fact, not an assumption."""

    def __init__(self, probes: dict[str, Callable[[], bool]]) -> None:
        self.probes = probes
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._look()  # what happened since the last look, just before the watched call returned

    def _run(self) -> None:
        while not self._stop.is_set():
            self._look()
            time.sleep(0.05)

    def _look(self) -> None:
        for name, probe in self.probes.items():
            if name not in self.first:
                try:
                    happened = probe()
                except Exception:  # a probe of a service being stopped: not happened yet
                    happened = False
                if happened:
                    self.first[name] = time.monotonic()

    def before(self, earlier: str, later: str) -> bool:
        """True when both happened, ``earlier`` first."""
        return earlier in self.first and later in self.first and self.first[earlier] <= self.first[later]
