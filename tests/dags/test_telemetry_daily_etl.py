"""telemetry_daily_etl end to end: raw JSON lines in S3 -> Spark through the cache -> quality checks -> Glue.

Then a day of garbage: ingest quarantines every line, and the validation task fails the run with a readable reason.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import boto3
import pytest

from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS
from spark_jobs.telemetry.generator import write_day_to_s3
from tests.plugins.airflow_home import AirflowHome, DagRun, connection_json

pytestmark = [pytest.mark.airflow, pytest.mark.spark]

DAGS = Path(__file__).resolve().parents[2] / "dags"
GOOD_DAY, BAD_DAY = "2026-11-22", "2026-11-20"


@pytest.fixture(scope="module")
def stack(s3_emulator, tmp_path_factory):
    from tests.support.buckets import remove_bucket, unique_bucket_name
    from tests.support.caches import CacheFactory

    client = s3_emulator.client()
    bucket = unique_bucket_name()
    client.create_bucket(Bucket=bucket)
    write_day_to_s3(client, bucket, "raw/events", date.fromisoformat(GOOD_DAY), 4000, seed=3)
    for part in range(2):
        garbage = "\n".join(["{not json", '{"event_id": 12', "plain text"] * 50)
        client.put_object(Bucket=bucket, Key=f"raw/events/dt={BAD_DAY}/part-{part}.jsonl", Body=garbage.encode())
    factory = CacheFactory(tmp_path_factory.mktemp("etl-caches"), s3_emulator.endpoint_url)
    cache = factory({"/warehouse": f"s3://{bucket}/warehouse", "/raw": f"s3://{bucket}/raw"})
    yield cache, bucket
    factory.stop_all()
    remove_bucket(client, bucket)


def _env(cache: CacheProcess, s3_endpoint: str) -> dict[str, str]:
    extra = {"s3_endpoint_url": s3_endpoint, "glue_endpoint_url": s3_endpoint, "region": "us-east-1"}
    return {
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache, **extra),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        **EMULATOR_CREDENTIALS,
    }


def _run(home: AirflowHome, cache: CacheProcess, s3_endpoint: str, conf: dict) -> DagRun:
    source = (DAGS / "telemetry_daily_etl.py").read_text()
    return home.run_dag(
        "telemetry_daily_etl", source, logical_date="2026-11-23", env=_env(cache, s3_endpoint), conf=conf
    )


def test_a_day_flows_from_raw_to_the_catalog(airflow_db, stack, s3_emulator) -> None:
    cache, bucket = stack
    run = _run(airflow_db, cache, s3_emulator.endpoint_url, {"day": GOOD_DAY})
    assert run.state == "success", run.tail(120)
    assert all(state in ("success", "skipped") for state in run.task_states.values()), run.task_states
    assert run.task_state("warm_inputs") == "success"
    events = run.xcom("validate_events")
    assert events["success"] is True and events["rows"] > 3000
    assert Path(events["results"]).exists()
    assert set(run.xcom("validate_aggregates")["tables"]) >= {"daily_active_users", "sessions_daily"}
    synced = {result["table"]: result["changed"] for result in run.xcom("metastore_sync")}
    assert synced["telemetry.events_clean"] is True and synced["telemetry.daily_active_users"] is True
    glue = boto3.client(
        "glue",
        endpoint_url=s3_emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    table = glue.get_table(DatabaseName="telemetry", Name="events_clean")["Table"]
    assert table["StorageDescriptor"]["Location"].startswith(f"s3://{bucket}/warehouse/events_clean")
    partitions = glue.get_partitions(DatabaseName="telemetry", TableName="events_clean")["Partitions"]
    assert [p["Values"] for p in partitions] == [[GOOD_DAY]]
    s3 = s3_emulator.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="warehouse/")["Contents"]]
    assert not [k for k in keys if "_temporary" in k or ".spark-staging" in k]


def test_a_day_of_garbage_fails_its_validation_task(airflow_db, stack, s3_emulator) -> None:
    cache, _ = stack
    run = _run(airflow_db, cache, s3_emulator.endpoint_url, {"day": BAD_DAY, "warmup": False})
    assert run.state == "failed"
    assert run.task_state("warm_inputs") == "skipped"
    assert run.task_state("ingest_events") == "success"  # every line quarantined, nothing lost, no crash
    assert run.task_state("validate_events") == "failed"
    assert run.task_state("metastore_sync") in ("upstream_failed", "skipped")
    assert f"no clean events for {BAD_DAY}: every raw line was quarantined" in run.output


def test_metastore_sync_dag_is_idempotent_after_the_etl(airflow_db, stack, s3_emulator) -> None:
    cache, _ = stack
    source = (DAGS / "metastore_sync.py").read_text()
    run = airflow_db.run_dag(
        "metastore_sync", source, logical_date="2026-11-23", env=_env(cache, s3_emulator.endpoint_url)
    )
    assert run.state == "success", run.tail(80)
    results = {r["table"]: r for r in run.xcom("sync")}
    assert results["telemetry.events_clean"]["changed"] is False  # the ETL registered it already
    assert (
        "skipped" in results["telemetry.retention_cohorts"]
        or results["telemetry.retention_cohorts"]["changed"] is False
    )
