"""The cache DAGs (warmup, purge, maintenance) run through ``airflow dags test`` against a real cache and S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cache_process import CacheProcess
from tests.plugins.airflow_home import AirflowHome, connection_json
from tests.plugins.cache_data import (
    DAY,
    DAY_BYTES,
    DAY_PATH,
    OLD_DAY_BYTES,
    OLD_DAY_PATH,
    admin,
    cached_bytes,
    put_events,
)
from tests.support.fill import load, usage

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
    load(events_cache, [DAY_PATH])
    plan = _run(airflow_db, "cache_purge", events_cache, {"target": 0.0})
    assert plan.state == "success", plan.tail()
    assert plan.xcom("purge")["dry_run"] is True and plan.xcom("purge")["freed_bytes"] == DAY_BYTES
    assert cached_bytes(events_cache, DAY_PATH) == DAY_BYTES
    done = _run(airflow_db, "cache_purge", events_cache, {"target": 0.0, "dry_run": False, "paths": [DAY_PATH]})
    assert done.state == "success", done.tail()
    assert done.xcom("purge")["purged"] is True
    assert cached_bytes(events_cache, DAY_PATH) == 0


@pytest.fixture
def full_cache(cache_factory, s3_client, bucket) -> CacheProcess:
    """A cache whose 1 MiB disk tier holds both days of events once loaded: 62.5% full, above the form's 0.6."""
    put_events(s3_client, bucket)
    cache = cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse"},
        {"store": {"page_size": "64KiB"}},
        memory_capacity="1MiB",
        disk_capacity="1MiB",
    )
    load(cache, [DAY_PATH, OLD_DAY_PATH])
    assert usage(cache) == (DAY_BYTES + OLD_DAY_BYTES) / 2**20
    return cache


def test_cache_purge_with_the_forms_defaults_plans_a_purge_to_60_percent(airflow_db, full_cache) -> None:
    before = usage(full_cache)
    plan = _run(airflow_db, "cache_purge", full_cache)
    assert plan.state == "success", plan.tail()
    result = plan.xcom("purge")
    assert result["dry_run"] is True and result["purged"] is False and result["target"] == 0.6
    assert result["freed_bytes"] > 0 and result["usage_before"] == before
    assert result["usage_after"] <= 0.6 and result["reached_target"] is True and result["shortfall"] is None
    assert usage(full_cache) == before  # a dry run changes nothing


def test_cache_purge_above_zero_runs_as_a_dry_run_then_for_real(airflow_db, full_cache) -> None:
    plan = _run(airflow_db, "cache_purge", full_cache, {"target": 0.3})
    assert plan.state == "success", plan.tail()
    planned = plan.xcom("purge")
    assert planned["dry_run"] is True and planned["usage_after"] <= 0.3

    done = _run(airflow_db, "cache_purge", full_cache, {"target": 0.3, "dry_run": False})
    assert done.state == "success", done.tail()
    result = done.xcom("purge")
    assert result["purged"] is True and result["reached_target"] is True
    assert result["freed_bytes"] == planned["freed_bytes"]  # the purge did what the plan said
    assert result["usage_after"] <= 0.3 and usage(full_cache) == result["usage_after"]


def test_a_path_limited_purge_takes_only_those_paths_and_says_why_it_fell_short(airflow_db, full_cache) -> None:
    run = _run(airflow_db, "cache_purge", full_cache, {"target": 0.1, "dry_run": False, "paths": [DAY_PATH]})
    assert run.state == "success", run.tail()
    result = run.xcom("purge")
    assert cached_bytes(full_cache, DAY_PATH) == 0
    assert cached_bytes(full_cache, OLD_DAY_PATH) == OLD_DAY_BYTES
    assert result["purged"] is True and result["freed_bytes"] == DAY_BYTES
    # The other day alone is 25% of the cache: the paths held less than a purge to 10% needed, and it says so.
    assert result["reached_target"] is False and result["refused"] == []
    assert result["shortfall"] and DAY_PATH in result["shortfall"], result["shortfall"]
    assert "not reached" in run.output


def test_a_purge_held_back_by_a_pin_reports_the_pinned_bytes(airflow_db, full_cache) -> None:
    admin(full_cache).ok("POST", "pin", {"path": OLD_DAY_PATH})
    run = _run(airflow_db, "cache_purge", full_cache, {"target": 0.0, "dry_run": False})
    assert run.state == "success", run.tail()
    result = run.xcom("purge")
    assert cached_bytes(full_cache, OLD_DAY_PATH) == OLD_DAY_BYTES and cached_bytes(full_cache, DAY_PATH) == 0
    assert result["reached_target"] is False
    assert any(r["path"] == OLD_DAY_PATH and "pinned" in r["reason"] for r in result["refused"]), result["refused"]
    assert "pinned" in result["shortfall"], result["shortfall"]


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"target": 1.5}, "target"),
        ({"target": -0.5}, "target"),
        ({"paths": ["relative/path"]}, "paths"),
        ({"dry_run": "maybe"}, "dry_run"),
    ],
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
