"""The Spark workers' HTTP service discovery (``infra.monitoring.spark_sd``) against a real standalone cluster, whose
workers serve Spark's own Prometheus text where the discovery says."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.monitoring.spark_sd import SparkDiscovery, spark_worker_targets
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster
from tests.support.waiting import wait_until


def discovered(sd: SparkDiscovery) -> list[dict[str, Any]]:
    with urllib.request.urlopen(sd.url, timeout=10) as response:
        groups: list[dict[str, Any]] = json.load(response)
    return groups


def test_only_running_workers_are_targets() -> None:
    master = {
        "workers": [
            {"id": "worker-b", "webuiaddress": "http://127.0.0.1:8082", "state": "DECOMMISSIONED"},
            {"id": "worker-a", "webuiaddress": "http://127.0.0.1:8081", "state": "ALIVE"},
            {"id": "worker-c", "webuiaddress": "http://127.0.0.1:8083", "state": "DEAD"},
        ]
    }
    assert spark_worker_targets(master) == [
        {"targets": ["127.0.0.1:8081"], "labels": {"worker_id": "worker-a", "state": "alive"}},
        {"targets": ["127.0.0.1:8082"], "labels": {"worker_id": "worker-b", "state": "decommissioned"}},
    ]


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandaloneCluster]:
    cluster = SparkStandaloneCluster(tmp_path_factory.mktemp("spark"), start_timeout=240.0)
    try:
        cluster.start(workers=1)
        yield cluster
    finally:
        cluster.stop()


def test_a_started_worker_is_discovered_and_serves_spark_metrics(
    spark_cluster: SparkStandaloneCluster, tmp_path: Path
) -> None:
    with SparkDiscovery(spark_cluster.webui_url, tmp_path) as sd:
        [group] = discovered(sd)
        with urllib.request.urlopen(f"http://{group['targets'][0]}/metrics/prometheus", timeout=10) as response:
            assert b"metrics_worker_coresFree_Value" in response.read()

        spark_cluster.resize(2)
        wait_until(lambda: len(discovered(sd)) == 2, timeout=60, what="the second worker discovered")
        spark_cluster.resize(1, graceful=False)
        wait_until(lambda: len(discovered(sd)) == 1, timeout=60, what="the stopped worker left out")

    with SparkDiscovery("http://127.0.0.1:9", tmp_path) as lost:  # no master there: Prometheus keeps what it had
        with pytest.raises(urllib.error.HTTPError) as answer:
            discovered(lost)
        assert answer.value.code == 503
