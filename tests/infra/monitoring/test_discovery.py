"""The deploy's discovery server (``infra.monitoring.discovery``) against real cache workers and a real Spark
standalone cluster, whose workers serve Spark's own Prometheus text where the discovery says."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.monitoring.discovery import CACHE_SD_PATH, SPARK_SD_PATH, DiscoveryServer, spark_worker_targets
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster
from tests.support.caches import CacheFactory
from tests.support.waiting import wait_until

CLUSTER = {"cluster": {"heartbeat_interval": "250ms", "member_timeout": "2s"}}


def discovered(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        groups: list[dict[str, Any]] = json.load(response)
    return groups


def status_of(url: str) -> int:
    try:
        return len(discovered(url)) and 200
    except urllib.error.HTTPError as exc:
        return exc.code


def test_cache_workers_are_found_through_any_worker_it_learnt_of(
    cache_factory: CacheFactory, bucket: str, redis_url: str, tmp_path: Path
) -> None:
    seed, other = cache_factory.cluster(2, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    with DiscoveryServer(tmp_path, cache_workers=[seed.webhdfs_url]) as server:
        url = server.url + CACHE_SD_PATH
        assert {g["targets"][0] for g in discovered(url)} == {urlsplit(w.webhdfs_url).netloc for w in (seed, other)}

        seed.kill()  # the only worker it was started with: it asks the one it learnt of
        wait_until(lambda: [g["targets"][0] for g in discovered(url)] == [urlsplit(other.webhdfs_url).netloc], 15)

        other.stop()  # nobody left to ask: 503, and Prometheus keeps what it had
        assert status_of(url) == 503


def test_only_running_spark_workers_are_targets() -> None:
    master = {
        "workers": [
            {"id": "worker-b", "webuiaddress": "http://127.0.0.1:8082", "state": "DECOMMISSIONED"},
            {"id": "worker-a", "webuiaddress": "http://127.0.0.1:8081", "state": "ALIVE"},
            {"id": "worker-c", "webuiaddress": "http://127.0.0.1:8083", "state": "DEAD"},
        ]
    }
    assert spark_worker_targets(master) == [
        {"targets": ["127.0.0.1:8081"], "labels": {"worker_id": "worker-a"}},
        {"targets": ["127.0.0.1:8082"], "labels": {"worker_id": "worker-b"}},
    ]


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandaloneCluster]:
    cluster = SparkStandaloneCluster(tmp_path_factory.mktemp("spark"), start_timeout=240.0)
    try:
        cluster.start(workers=1)
        yield cluster
    finally:
        cluster.stop()


def test_a_started_spark_worker_is_discovered_and_serves_spark_metrics(
    spark_cluster: SparkStandaloneCluster, tmp_path: Path
) -> None:
    with DiscoveryServer(tmp_path, cache_workers=[], spark_master_ui=spark_cluster.webui_url) as server:
        url = server.url + SPARK_SD_PATH
        [group] = discovered(url)
        with urllib.request.urlopen(f"http://{group['targets'][0]}/metrics/prometheus", timeout=10) as response:
            assert b"metrics_worker_coresFree_Value" in response.read()
        with urllib.request.urlopen(f"{spark_cluster.webui_url}/metrics/master/prometheus", timeout=10) as response:
            assert b"metrics_master_aliveWorkers_Value" in response.read()

        spark_cluster.resize(2)
        wait_until(lambda: len(discovered(url)) == 2, timeout=60, what="the second worker discovered")
        spark_cluster.resize(1, graceful=False)
        wait_until(lambda: len(discovered(url)) == 1, timeout=60, what="the stopped worker left out")

    with DiscoveryServer(tmp_path, cache_workers=[], spark_master_ui="http://127.0.0.1:9") as lost:
        assert status_of(lost.url + SPARK_SD_PATH) == 503
