"""``CachePurgeOperator`` in a real DAG run against a small cache (1 MiB disk tier) holding 62.5% of its capacity.

The tasks run in a chain, each seeing what the one before left: below the default threshold nothing happens; a
purge scoped to the templated day evicts that day only; a dry run plans; the purge does what was planned; a purge
below the threshold again does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.operators.purge import CachePurgeOperator
from tests.plugins.airflow_home import AirflowHome, DagRun, connection_json
from tests.plugins.cache_data import (
    DAY,
    DAY_BYTES,
    DAY_PATH,
    OLD_DAY_BYTES,
    OLD_DAY_PATH,
    cached_bytes,
    events_cache,
)
from tests.support.fill import load, usage

CAPACITY = 1024 * 1024
pytestmark = pytest.mark.airflow

DAG_ID = "lakecache_purge"
DAG = f"""
    import pendulum
    from airflow.sdk import DAG, chain
    from lakecache_airflow.operators.purge import CachePurgeOperator

    with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC"), catchup=False):
        chain(
            CachePurgeOperator(task_id="purge_below"),
            CachePurgeOperator(
                task_id="purge_day", threshold=0.5, target=0.0, paths=["/warehouse/events/dt={{{{ ds }}}}"]
            ),
            CachePurgeOperator(task_id="purge_plan", threshold=0.2, target=0.1, dry_run=True),
            CachePurgeOperator(task_id="purge", threshold=0.2, target=0.1),
            CachePurgeOperator(task_id="purge_again", threshold=0.2, target=0.1),
        )
"""


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    """A small cache with both days of events loaded: (DAY_BYTES + OLD_DAY_BYTES) / 1 MiB = 62.5% used."""
    root = tmp_path_factory.mktemp("purge")
    with events_cache(s3_emulator, root, memory_capacity="512KiB", disk_capacity="1MiB") as cache:
        load(cache, [DAY_PATH, OLD_DAY_PATH])
        assert usage(cache) == (DAY_BYTES + OLD_DAY_BYTES) / CAPACITY
        yield cache


@pytest.fixture(scope="module")
def run(airflow_db: AirflowHome, cache: CacheProcess) -> DagRun:
    run = airflow_db.run_dag(
        DAG_ID, DAG, logical_date=DAY, env={"AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache)}
    )
    assert run.state == "success", run.tail()
    return run


def test_nothing_is_purged_below_the_caches_high_watermark(run: DagRun) -> None:
    result = run.xcom("purge_below")
    assert result["purged"] is False and result["freed_bytes"] == 0 and result["evicted"] == []
    assert result["usage_before"] == result["usage_after"] == (DAY_BYTES + OLD_DAY_BYTES) / CAPACITY
    # No threshold or target given: the cache's own watermarks.
    assert (result["threshold"], result["target"]) == (0.9, 0.75)


def test_a_purge_above_the_threshold_scoped_to_the_templated_day_evicts_that_day_only(
    run: DagRun, cache: CacheProcess
) -> None:
    result = run.xcom("purge_day")
    assert result["purged"] is True
    assert result["freed_bytes"] == DAY_BYTES
    assert {e["path"] for e in result["evicted"]} == {f"{DAY_PATH}/part-0.parquet", f"{DAY_PATH}/part-1.parquet"}
    assert result["usage_after"] == OLD_DAY_BYTES / CAPACITY
    assert result["reached_target"] is False  # the other day is outside the scope
    assert cached_bytes(cache, DAY_PATH) == 0


def test_a_dry_run_pushes_the_plan_and_changes_nothing(run: DagRun) -> None:
    plan, purge = run.xcom("purge_plan"), run.xcom("purge")
    assert plan["dry_run"] is True and plan["purged"] is False
    assert plan["freed_bytes"] > 0 and plan["evicted"]
    assert all(e["path"].startswith(f"{OLD_DAY_PATH}/") for e in plan["evicted"])
    assert plan["usage_after"] <= 0.1 < plan["usage_before"]
    # The purge that ran next found the cache as the plan had left it: untouched.
    assert purge["usage_before"] == plan["usage_before"] == OLD_DAY_BYTES / CAPACITY


def test_a_purge_brings_usage_down_to_the_target(run: DagRun, cache: CacheProcess) -> None:
    plan, purge = run.xcom("purge_plan"), run.xcom("purge")
    assert purge["purged"] is True and purge["dry_run"] is False
    assert purge["reached_target"] is True
    assert purge["freed_bytes"] == plan["freed_bytes"]
    assert purge["usage_after"] <= 0.1
    assert usage(cache) == purge["usage_after"]


def test_once_below_the_threshold_again_nothing_more_is_purged(run: DagRun) -> None:
    result = run.xcom("purge_again")
    assert result["purged"] is False and result["freed_bytes"] == 0
    assert result["usage_before"] == run.xcom("purge")["usage_after"]


def test_defaults_above_each_other_fail_the_task_with_what_to_set(
    cache: CacheProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a threshold, below the cache's low watermark (the default target): nonsense, said plainly.
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", connection_json(cache))
    with pytest.raises(Exception, match=r"target 0.75 is above threshold 0.50 .*set both"):
        CachePurgeOperator(task_id="p", threshold=0.5).execute({})
    assert CacheHook().status()["used_bytes"] > 0  # and nothing was purged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, r"threshold must be a fraction of the cache's capacity in \[0, 1\], not 1.5"),
        ({"target": -0.1}, r"target must be a fraction"),
        ({"threshold": float("nan")}, r"threshold must be a fraction"),
        ({"threshold": True}, r"threshold must be a fraction"),
        ({"threshold": "0.9"}, r"threshold must be a fraction"),
        ({"threshold": 0.5, "target": 0.6}, r"target \(0.6\) must not be above threshold \(0.5\)"),
        ({"dry_run": "yes"}, r"dry_run must be True or False"),
    ],
)
def test_bad_fractions_break_the_dag_file_not_the_run(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CachePurgeOperator(task_id="p", **kwargs)
