"""telemetry_daily_etl: yesterday's raw game telemetry to clean events, aggregates and the catalog, every day 02:00 UTC.

warm the day's raw input in the cache -> ingest (clean, dedupe, quarantine) -> validate -> aggregate -> validate ->
metastore sync. Every Spark job reads and writes ``webhdfs://`` paths on the cache; nothing is backed up by hand.
Set ``warmup`` to false to skip the warmup (the ETL still runs, reading through the cache cold).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, dag, task

from lakecache_airflow.assets import AGGREGATES, EVENTS_CLEAN, EVENTS_QUARANTINE, PUBLISHED
from lakecache_airflow.operators.metastore import MetastoreSyncOperator
from lakecache_airflow.operators.warmup import CacheWarmupOperator
from lakecache_airflow.pipeline import DAY, SPARK_CONF, SPARK_JOBS, WEBHDFS, quality_dir, spark_env


@dag(
    dag_id="telemetry_daily_etl",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    params={
        "day": Param(None, type=["null", "string"], format="date", description="Day to process (default: yesterday)"),
        "warmup": Param(True, type="boolean", description="Warm the day's raw input in the cache first"),
    },
    tags=["lakecache", "telemetry", "etl"],
    doc_md=__doc__,
)
def telemetry_daily_etl() -> None:
    @task.branch
    def plan_warmup(params: dict[str, Any] | None = None) -> str:
        """Warm up first, or go straight to ingest."""
        return "warm_inputs" if params and params["warmup"] else "ingest_events"

    warm = CacheWarmupOperator(task_id="warm_inputs", paths=[f"/raw/events/dt={DAY}"], parallelism=4)
    ingest = SparkSubmitOperator(
        task_id="ingest_events",
        application=str(SPARK_JOBS / "ingest_events.py"),
        conn_id="spark_default",
        conf=SPARK_CONF,
        env_vars=spark_env(),
        application_args=[
            "--raw",
            f"{WEBHDFS}/raw/events/dt={DAY}",
            "--output",
            f"{WEBHDFS}{EVENTS_CLEAN.path}",
            "--quarantine",
            f"{WEBHDFS}{EVENTS_QUARANTINE.path}",
            "--date",
            DAY,
        ],
        trigger_rule="none_failed_min_one_success",
        outlets=[EVENTS_CLEAN.asset, EVENTS_QUARANTINE.asset],
    )

    @task
    def validate_events(day: str, dag_run: Any = None) -> dict[str, Any]:
        """Great Expectations on the day's clean events; fails with a readable summary."""
        from lakecache_airflow.hooks.cache import CacheHook
        from lakecache_airflow.quality import check, events_clean_suite, read_partition
        from spark_jobs.telemetry import EVENT_TYPES, PLATFORMS

        root = CacheHook().endpoint.url.replace("http://", "webhdfs://")
        out = quality_dir(dag_run.dag_id, dag_run.run_id) / "events_clean.json"
        try:
            frame = read_partition(f"{root}{EVENTS_CLEAN.path}", "dt", day)
        except FileNotFoundError:
            message = (
                f"no clean events for {day}: every raw line was quarantined or the day is empty "
                f"(reasons in {EVENTS_QUARANTINE.path}/dt={day})"
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"table": EVENTS_CLEAN.name, "success": False, "summary": message}))
            raise ValueError(message) from None
        result = check(
            frame,
            events_clean_suite(date.fromisoformat(day), event_types=EVENT_TYPES, platforms=PLATFORMS),
            table=EVENTS_CLEAN.name,
            result_path=out,
        )
        return {"table": EVENTS_CLEAN.name, "rows": len(frame), "success": result.success, "results": str(out)}

    aggregate = SparkSubmitOperator(
        task_id="daily_aggregates",
        application=str(SPARK_JOBS / "daily_aggregates.py"),
        conn_id="spark_default",
        conf=SPARK_CONF,
        env_vars=spark_env(),
        application_args=[
            "--events",
            f"{WEBHDFS}{EVENTS_CLEAN.path}",
            "--output-root",
            f"{WEBHDFS}/warehouse/agg",
            "--date",
            DAY,
        ],
        outlets=[table.asset for table in AGGREGATES],
    )

    @task
    def validate_aggregates(day: str, dag_run: Any = None) -> dict[str, Any]:
        """Great Expectations on every aggregate table's new partition."""
        from lakecache_airflow.hooks.cache import CacheHook
        from lakecache_airflow.quality import aggregates_suite, check, read_partition

        root = CacheHook().endpoint.url.replace("http://", "webhdfs://")
        checked = {}
        for table in AGGREGATES:
            column = table.partition_keys[0]
            # a run for day D completes the cohorts that started on D-1 (their day 1)
            value = str(date.fromisoformat(day) - timedelta(days=1)) if column == "cohort_dt" else day
            try:
                frame = read_partition(f"{root}{table.path}", column, value)
            except FileNotFoundError:
                if table.name in ("revenue_daily", "retention_cohorts"):
                    continue  # a day without purchases, or whose cohorts are not due yet, has no partition
                raise
            out = quality_dir(dag_run.dag_id, dag_run.run_id) / f"{table.name}.json"
            check(frame, aggregates_suite(table.name), table=table.name, result_path=out)
            checked[table.name] = len(frame)
        return {"tables": checked}

    sync = MetastoreSyncOperator(task_id="metastore_sync", tables=[table.to_dict() for table in PUBLISHED])

    plan = plan_warmup()
    plan >> [warm, ingest]
    warm >> ingest
    ingest >> validate_events(DAY) >> aggregate >> validate_aggregates(DAY) >> sync


telemetry_daily_etl()
