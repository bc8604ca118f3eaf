"""``CacheWarmupOperator`` in a real DAG run (``airflow dags test``) against a real cache and S3 emulator.

One DAG run for the module, four independent tasks: a deferred warmup of the templated day, a polling warmup, a
warmup against a cache that is down, and one whose file vanished from S3 after the cache listed it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from infra.ports import free_port
from lakecache_airflow.operators.warmup import CacheWarmupOperator
from tests.plugins.airflow_home import AirflowHome, DagRun, connection_json
from tests.plugins.cache_data import (
    DAY,
    DAY_BYTES,
    DAY_PATH,
    OLD_DAY_PATH,
    PAGE,
    VANISHING_PATH,
    cached_bytes,
    events_cache,
    remove_behind_the_cache,
)

pytestmark = pytest.mark.airflow

DAG_ID = "lakecache_warmup"
DAG = f"""
    import pendulum
    from airflow.sdk import DAG
    from lakecache_airflow.operators.warmup import CacheWarmupOperator

    with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC"), catchup=False):
        CacheWarmupOperator(task_id="warmup_day", paths="/warehouse/events/dt={{{{ ds }}}}", poll_interval=0.2)
        CacheWarmupOperator(
            task_id="warmup_polling",
            paths=["{OLD_DAY_PATH}/part-0.parquet"],
            tier="memory",
            deferrable=False,
            poll_interval=0.2,
        )
        CacheWarmupOperator(task_id="warmup_cache_down", paths="{DAY_PATH}", lakecache_conn_id="lakecache_down")
        CacheWarmupOperator(task_id="warmup_vanished", paths=["{VANISHING_PATH}"], poll_interval=0.2)
"""


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    """A cache on a bucket of events, one of whose files is deleted behind its back."""
    # A long metadata sync interval: the cache must still list the vanished file when the DAG run loads it.
    with events_cache(s3_emulator, tmp_path_factory.mktemp("warmup"), {"metadata": {"sync_interval": "10m"}}) as cache:
        remove_behind_the_cache(cache, s3_emulator.client(), cache.bucket)
        yield cache


@pytest.fixture(scope="module")
def down_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def run(airflow_db: AirflowHome, cache: CacheProcess, down_port: int) -> DagRun:
    connections = {
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache),
        "AIRFLOW_CONN_LAKECACHE_DOWN": f"lakecache://:t@127.0.0.1:{down_port}",
    }
    return airflow_db.run_dag(DAG_ID, DAG, logical_date=DAY, env=connections)


def test_deferred_warmup_loads_the_templated_day(run: DagRun, cache: CacheProcess) -> None:
    assert run.task_state("warmup_day") == "success", run.tail()
    summary = run.xcom("warmup_day")
    assert summary["paths"] == [DAY_PATH]  # dt={{ ds }} rendered with the run's logical date
    assert summary["state"] == "succeeded"
    assert (summary["files_done"], summary["bytes_done"]) == (2, DAY_BYTES)
    assert cached_bytes(cache, DAY_PATH) == DAY_BYTES


def test_deferred_warmup_waits_in_the_trigger(run: DagRun) -> None:
    # dag.test() runs a deferred task's trigger inline, then resumes the task in execute_complete.
    assert "running trigger in line" in run.output
    assert "Trigger completed" in run.output


def test_polling_warmup_loads_without_deferring(run: DagRun, cache: CacheProcess) -> None:
    assert run.task_state("warmup_polling") == "success", run.tail()
    summary = run.xcom("warmup_polling")
    assert summary["state"] == "succeeded" and summary["bytes_done"] == 2 * PAGE
    assert cached_bytes(cache, f"{OLD_DAY_PATH}/part-0.parquet") == 2 * PAGE
    assert cached_bytes(cache, f"{OLD_DAY_PATH}/part-1.parquet") == 0


def test_warmup_against_a_down_cache_fails_with_a_clear_message(run: DagRun, down_port: int) -> None:
    assert run.task_state("warmup_cache_down") == "failed"
    assert "warmup_cache_down" not in run.xcoms
    assert f"cannot reach the Lakecache cache at http://127.0.0.1:{down_port}: connection refused" in run.output


def test_warmup_fails_with_the_jobs_file_errors(run: DagRun) -> None:
    assert run.task_state("warmup_vanished") == "failed"
    assert f"files failed: {VANISHING_PATH}: " in run.output


def test_the_run_fails_as_a_whole_when_a_warmup_fails(run: DagRun) -> None:
    assert run.state == "failed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parallelism": 0}, "parallelism must be a positive integer"),
        ({"tier": "ssd"}, "tier must be one of disk, memory"),
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
    ],
)
def test_bad_arguments_break_the_dag_file_not_the_run(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CacheWarmupOperator(task_id="w", paths=DAY_PATH, **kwargs)
