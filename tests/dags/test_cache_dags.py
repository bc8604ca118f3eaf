"""The cache DAGs (warmup, purge, maintenance) run through ``airflow dags test`` against a real cache and S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cache_process import CacheProcess
from tests.plugins.airflow_home import AirflowHome, connection_json
from tests.plugins.cache_data import DAY, DAY_BYTES, DAY_PATH, admin, cached_bytes

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _run(home: AirflowHome, dag_id: str, cache: CacheProcess, conf: dict | None = None):
    env = {"AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache)}
    return home.run_dag(dag_id, (DAGS / f"{dag_id}.py").read_text(), logical_date=DAY, env=env, conf=conf)


def test_cache_warmup_loads_the_paths_of_the_trigger_form(airflow_db, events_cache) -> None:
    run = _run(airflow_db, "cache_warmup", events_cache, {"paths": [DAY_PATH], "parallelism": 2})
    assert run.state == "success", run.tail()
    assert run.task_state("warm") == "success"
    assert cached_bytes(events_cache, DAY_PATH) == DAY_BYTES


def test_cache_purge_dry_run_by_default_then_purges(airflow_db, events_cache) -> None:
    admin(events_cache).wait_job(admin(events_cache).ok("POST", "load", {"paths": [DAY_PATH]})["id"])
    plan = _run(airflow_db, "cache_purge", events_cache, {"target": 0.0})
    assert plan.state == "success", plan.tail()
    assert plan.xcom("purge")["dry_run"] is True and plan.xcom("purge")["freed_bytes"] == DAY_BYTES
    assert cached_bytes(events_cache, DAY_PATH) == DAY_BYTES
    done = _run(airflow_db, "cache_purge", events_cache, {"target": 0.0, "dry_run": False, "paths": [DAY_PATH]})
    assert done.state == "success", done.tail()
    assert done.xcom("purge")["purged"] is True
    assert cached_bytes(events_cache, DAY_PATH) == 0


@pytest.mark.parametrize(
    ("conf", "param"),
    [({"target": 1.5}, "target"), ({"paths": ["relative/path"]}, "paths"), ({"dry_run": "maybe"}, "dry_run")],
)
def test_cache_purge_refuses_bad_params_naming_them(airflow_db, events_cache, conf, param) -> None:
    env = airflow_db.env({"AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(events_cache)})
    (airflow_db.dags_folder / "cache_purge.py").write_text((DAGS / "cache_purge.py").read_text())
    before = cached_bytes(events_cache, DAY_PATH)
    result = airflow_db.airflow("dags", "test", "cache_purge", DAY, "--conf", json.dumps(conf), env=env)
    assert result.returncode != 0
    failure = result.stdout[-3000:]
    assert param in failure and ("Invalid" in failure or "validat" in failure), failure
    assert "Purging" not in result.stdout and cached_bytes(events_cache, DAY_PATH) == before


def test_cache_maintenance_purges_under_pressure_and_sweeps_ttls(airflow_db, events_cache) -> None:
    run = _run(airflow_db, "cache_maintenance", events_cache)
    assert run.state == "success", run.tail()
    assert run.xcom("purge_under_pressure")["purged"] is False  # a nearly empty cache is under no pressure
    assert run.task_state("ttl_sweep") == "success"
