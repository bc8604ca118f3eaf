"""What ``python -m infra.monitoring snapshots --platform`` watches: the whole platform live, so that every dashboard
query has something to answer, the ETL's and Spark's included (``--demo`` runs neither Airflow's components nor a
Spark master).

In order, each in ``.local/snapshots/platform/``, stopped again in the reverse order when the snapshots are taken:

1. the local stack with three cache workers on Redis (``infra.stack``);
2. a Spark standalone cluster of one master and one worker (``SparkStandaloneCluster``) whose ``spark-defaults.conf``
   also holds Hadoop's HA settings for the cache's workers, so a job submitted to it addresses the cache as
   ``webhdfs://lakecache`` (what ``infra.demo`` does on a cluster);
3. the monitoring (``infra.monitoring.local.up``) against the stack and the master's web UI;
4. Airflow's four components (``infra.airflow.LocalAirflow``) pushing their metrics to the monitoring's bridge, with
   ``spark_default`` at the standalone master and ``SPARK_CONF_DIR`` at its configuration, so the DAG's
   ``SparkSubmitOperator`` tasks run their jobs there;
5. two runs of ``telemetry_daily_etl`` through Airflow's REST API (``infra.airflow_rest``), on a day of generated
   raw events written straight into S3, as ``make demo`` writes them: unpausing the DAG makes the scheduler run its
   latest interval at once (``catchup`` is off), so the events are of the day that run processes (the day before
   the API's ``next_dagrun_logical_date``); once it succeeded, the same day is run again, triggered as from the UI.

Two runs, because a run is the first time each of its tasks finishes: ``airflow_ti_finish_total`` of a validation
appears at 1, and ``rate()`` sees no increase in a counter's first sample, so the data-quality SLO's ratio (which
records nothing while its total's rate is 0) needs a second validation to have one. The window the snapshots cover
runs from the monitoring's start to a minute after the second run, long enough for Airflow's last push, a scrape and
an evaluation of the rules.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from infra.airflow import USERNAME, LocalAirflow
from infra.airflow_environment import stack_connections
from infra.airflow_rest import AirflowRest
from infra.demo.cluster import ClusterLayout
from infra.demo.driver import RAW_FILES, SEED
from infra.demo.runs import DAG_ID, RAW_PREFIX
from infra.monitoring import local
from infra.monitoring.snapshot_demo import SNAPSHOTS_DIR
from infra.monitoring.snapshots import Window, scrape_interval
from infra.stack import DEMO_BUCKET, LocalStack
from lakecache_airflow.scaling.base import ScalingError
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster
from spark_jobs.telemetry.generator import write_day_to_s3

PLATFORM_DIR = SNAPSHOTS_DIR / "platform"
CACHE_WORKERS = 3
SPARK_WORKER_CORES = 2
SPARK_WORKER_MEMORY = "1g"
RUN_TIMEOUT = 1800.0
SETTLE_SECONDS = 60.0
"""After the last run: Airflow pushes every 10 s, Prometheus scrapes and evaluates every 15 s."""


def platform_window(events: int) -> tuple[str, Window, Callable[[], object]]:
    """Run the platform (see the module docstring) with ``events`` raw events and two DAG runs under the monitoring;
    Prometheus's URL, the window from the monitoring's start to after the runs, and what stops everything (call it
    once the snapshots are taken).

    Raises ``RuntimeError`` when a part does not come up or a run does not succeed (its tasks' states and where the
    logs are named); whatever started is stopped again.
    """
    shutil.rmtree(PLATFORM_DIR, ignore_errors=True)  # a new S3, cache, Airflow DB and Prometheus: this run's only
    PLATFORM_DIR.mkdir(parents=True)
    stack_dir, spark_dir, monitoring_dir, airflow_dir = (
        PLATFORM_DIR / name for name in ("stack", "spark", "monitoring", "airflow")
    )
    teardown = contextlib.ExitStack()
    try:
        stack = LocalStack(stack_dir, workers=CACHE_WORKERS)
        teardown.callback(stack.stop)
        stack.start()
        layout = ClusterLayout.wait(stack.info.worker_urls)
        print(f"stack up: {CACHE_WORKERS} cache workers, addressed by Spark as {layout.uri}")

        spark = SparkStandaloneCluster(
            spark_dir,
            worker_cores=SPARK_WORKER_CORES,
            worker_memory=SPARK_WORKER_MEMORY,
            conf={f"spark.hadoop.{key}": value for key, value in layout.settings.items()},
        )
        teardown.callback(spark.stop)
        try:
            spark.start(workers=1)
        except ScalingError as exc:
            raise RuntimeError(f"the Spark standalone cluster did not start: {exc}") from exc
        print(f"Spark standalone: master {spark.master_url}, web UI {spark.webui_url}, 1 worker")

        info = local.up(monitoring_dir, stack_dir, spark.webui_url)
        teardown.callback(local.down, monitoring_dir)
        start = time.time()
        print(f"monitoring up: Prometheus at {info.prometheus_url}")

        master_host, _, master_port = spark.master_url.rpartition(":")
        connections = stack_connections(stack.info, nameservice=layout.nameservice)
        connections["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps(
            {"conn_type": "spark", "host": master_host, "port": int(master_port)}
        )
        airflow = LocalAirflow(
            airflow_dir,
            stack.info,
            extra_env={**connections, "SPARK_CONF_DIR": str(spark.conf_dir)},
            metrics_endpoint=info.airflow_metrics_endpoint,
        )
        teardown.callback(airflow.stop)
        airflow.start()
        print(f"Airflow up at {airflow.url}, pushing its metrics to {info.airflow_metrics_endpoint}")

        def write_day(day: date) -> None:
            raw = write_day_to_s3(stack.s3.client(), DEMO_BUCKET, RAW_PREFIX, day, events, SEED, RAW_FILES)
            print(f"wrote {raw.lines:,} raw events to {raw.uri}")

        _run_dag(AirflowRest(airflow.url, USERNAME, airflow.password), airflow, write_day)
        time.sleep(SETTLE_SECONDS)
        window = Window(start, time.time(), scrape_interval(info.prometheus_url))
    except BaseException:
        teardown.close()
        raise
    return info.prometheus_url, window, teardown.close


def _run_dag(api: AirflowRest, airflow: LocalAirflow, write_day: Callable[[date], None]) -> None:
    """Write the raw events of the day the scheduler's first run processes, unpause the ETL, wait for that run, then
    run the same day again through the API."""
    next_run = api.wait_for_dag(DAG_ID).get("next_dagrun_logical_date")
    if not next_run:
        raise RuntimeError(f"Airflow plans no run of {DAG_ID}: is its schedule gone?")
    day = (datetime.fromisoformat(next_run) - timedelta(days=1)).date()
    write_day(day)
    api.unpause(DAG_ID)
    _finish(api, airflow, api.wait_for_first_run(DAG_ID), day)
    _finish(api, airflow, api.trigger(DAG_ID, datetime.now(UTC), {"day": day.isoformat()}), day)


def _finish(api: AirflowRest, airflow: LocalAirflow, run_id: str, day: date) -> None:
    started = time.monotonic()
    print(f"{DAG_ID}: {run_id} runs for {day}")
    state = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    if state != "success":
        tasks = ", ".join(f"{task} {task_state}" for task, task_state in api.task_states(DAG_ID, run_id).items())
        raise RuntimeError(f"{DAG_ID} run {run_id} {state} ({tasks}); logs in {airflow.home / 'logs'}")
    print(f"{DAG_ID}: {run_id} succeeded in {time.monotonic() - started:.0f}s")
