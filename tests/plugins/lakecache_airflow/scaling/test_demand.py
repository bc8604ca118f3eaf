"""Demand: waiting applications from the Spark master's JSON, cache pressure from a real cache's admin API."""

from __future__ import annotations

import pytest

from infra.ports import free_port
from lakecache_airflow.scaling.backends import BackendConfig, collect_demand
from lakecache_airflow.scaling.base import BackendUnavailableError
from lakecache_airflow.scaling.demand import Demand, from_cache_status, from_master_json, read_cache

# The shape of Spark 4.1's master /json/ (trimmed): one application running, two waiting for executors.
MASTER = {
    "url": "spark://127.0.0.1:7077",
    "workers": [{"id": "worker-1", "port": 40001, "cores": 4, "coresused": 4, "state": "ALIVE"}],
    "aliveworkers": 1,
    "cores": 4,
    "coresused": 4,
    "activeapps": [
        {"id": "app-1", "name": "etl", "cores": 4, "state": "RUNNING"},
        {"id": "app-2", "name": "report", "cores": 0, "state": "WAITING"},
        {"id": "app-3", "name": "adhoc", "cores": 1, "state": "WAITING"},
    ],
    "status": "ALIVE",
}


def test_waiting_applications_and_busy_cores_come_from_the_master_json() -> None:
    demand = from_master_json(MASTER, app_cores=4)
    assert (demand.used_cores, demand.running_apps, demand.waiting_apps, demand.waiting_cores) == (4, 1, 2, 7)


def test_cache_pressure_is_use_at_or_above_the_high_watermark() -> None:
    assert from_cache_status({"used_bytes": 90, "capacity_bytes": 100, "high_watermark": 0.9}).cache_pressure
    assert not from_cache_status({"used_bytes": 89, "capacity_bytes": 100, "high_watermark": 0.9}).cache_pressure
    odd = from_cache_status({"used_bytes": 1})
    assert odd.cache_fill is None and odd.notes


def test_the_cache_admin_api_reports_its_fill(cache_factory, bucket: str) -> None:
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    demand = read_cache(cache.webhdfs_url)
    assert demand.cache_capacity_bytes and demand.cache_capacity_bytes > 0
    assert demand.cache_used_bytes == 0 and demand.cache_high_watermark == pytest.approx(0.9)
    assert demand.cache_fill == 0.0 and not demand.cache_pressure


def test_a_source_that_cannot_be_read_becomes_a_note_not_a_failure() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendUnavailableError, match=f"cannot reach {down}/admin/v1/status"):
        read_cache(down)
    config = BackendConfig(kind="asg", options={"group": "g"}, spark_master_ui=down, cache_url=down)
    demand = collect_demand(config, scaler=object(), app_cores=4)  # type: ignore[arg-type]
    assert demand.used_cores is None and demand.cache_fill is None
    assert [n.split(":")[0] for n in demand.notes] == ["Spark demand unknown", "cache pressure unknown"]


def test_demands_from_two_sources_merge() -> None:
    spark, cache = (
        Demand(used_cores=3, waiting_cores=2, waiting_apps=1),
        Demand(cache_used_bytes=5, cache_capacity_bytes=10),
    )
    merged = Demand().merged(spark).merged(cache)
    assert (merged.used_cores, merged.waiting_cores, merged.cache_fill) == (3, 2, 0.5)
