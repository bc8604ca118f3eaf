"""Fixtures of the scaling tests: one small Spark standalone cluster for the session (a master and one worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandaloneCluster]:
    """A master and one worker (1 core, 512 MiB) as local processes; every process of it is stopped at the end.

    Tests that resize it put it back to one worker. Its state directory is what ``attach`` and the
    ``spark`` backend's ``state_dir`` take.
    """
    cluster = SparkStandaloneCluster(
        tmp_path_factory.mktemp("spark-cluster"),
        worker_cores=1,
        worker_memory="512m",
        decommission_timeout=240.0,
        start_timeout=240.0,
    )
    try:
        cluster.start(workers=1)
        yield cluster
    finally:
        cluster.stop()
