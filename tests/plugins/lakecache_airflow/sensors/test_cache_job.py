"""``CacheJobSensor`` in a real DAG run: waiting (deferred and poking) on a job another task started.

Two jobs, each watched by a deferred and a poking sensor: a throttled load that succeeds, and a load whose file
vanished from S3 behind the cache, which fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.plugins.airflow_home import AirflowHome, DagRun, connection_json
from tests.plugins.cache_data import DAY_BYTES, OLD_DAY_BYTES, VANISHING_PATH, events_cache, remove_behind_the_cache

pytestmark = pytest.mark.airflow

DAG_ID = "lakecache_job_sensor"
DAG = f"""
    import pendulum
    from airflow.sdk import DAG, task
    from lakecache_airflow.hooks.cache import CacheHook
    from lakecache_airflow.sensors.cache_job import CacheJobSensor

    with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC"), catchup=False):

        @task
        def start_load() -> str:
            # Throttled to ~5 s: the job still runs when the sensors first look.
            return CacheHook().load(["/warehouse/events"], bandwidth="128KiB")["id"]

        @task
        def start_failing_load() -> str:
            return CacheHook().load(["{VANISHING_PATH}"])["id"]

        for upstream in (start_load(), start_failing_load()):
            name = upstream.operator.task_id.removeprefix("start_")
            job_id = "{{{{ ti.xcom_pull(task_ids='" + upstream.operator.task_id + "') }}}}"
            deferred = CacheJobSensor(
                task_id=f"wait_{{name}}_deferred", job_id=job_id, deferrable=True, poke_interval=0.2, timeout=120
            )
            # After the deferred sensor, whatever its outcome: so that one is sure to find the job running.
            poking = CacheJobSensor(
                task_id=f"wait_{{name}}_poking", job_id=job_id, poke_interval=0.2, timeout=120, trigger_rule="all_done"
            )
            upstream >> deferred >> poking
"""


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    with events_cache(s3_emulator, tmp_path_factory.mktemp("sensor"), {"metadata": {"sync_interval": "10m"}}) as cache:
        remove_behind_the_cache(cache, s3_emulator.client(), cache.bucket)
        yield cache


@pytest.fixture(scope="module")
def run(airflow_db: AirflowHome, cache: CacheProcess) -> DagRun:
    return airflow_db.run_dag(DAG_ID, DAG, env={"AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache)})


def test_the_jobs_were_started_by_upstream_tasks(run: DagRun) -> None:
    assert run.task_state("start_load") == "success", run.tail()
    assert run.task_state("start_failing_load") == "success", run.tail()


@pytest.mark.parametrize("mode", ["deferred", "poking"])
def test_a_sensor_succeeds_with_the_jobs_summary_when_the_job_succeeds(run: DagRun, mode: str) -> None:
    assert run.task_state(f"wait_load_{mode}") == "success", run.tail()
    summary = run.xcom(f"wait_load_{mode}")
    assert summary["job_id"] == run.xcom("start_load")
    assert summary["state"] == "succeeded"
    assert summary["bytes_done"] == DAY_BYTES + OLD_DAY_BYTES


def test_the_deferred_sensor_waited_in_the_trigger(run: DagRun) -> None:
    assert "running trigger in line" in run.output


@pytest.mark.parametrize("mode", ["deferred", "poking"])
def test_a_sensor_fails_with_the_jobs_errors_when_the_job_fails(run: DagRun, mode: str) -> None:
    assert run.task_state(f"wait_failing_load_{mode}") == "failed"
    assert f"wait_failing_load_{mode}" not in run.xcoms
    failed_job = run.xcom("start_failing_load")
    assert f"load job {failed_job} failed: 1 of 1 files failed: {VANISHING_PATH}: " in run.output
