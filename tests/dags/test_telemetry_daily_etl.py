"""telemetry_daily_etl's failure path and metastore_sync on its own, with ``airflow dags test`` on one cache.

A day of garbage: ingest quarantines every line, and the validation task fails the run with a readable reason. A
published table (written as a committed Spark job leaves it): metastore_sync registers it once, then changes nothing.

A good day end to end (raw JSON lines in S3 -> Spark through the cache -> quality checks -> the catalog) is
``make demo``'s test, ``tests/infra/test_demo.py``, which runs this DAG twice on a three-worker cluster; running it
again here would only repeat it.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS
from tests.plugins.airflow_home import AirflowHome, DagRun, connection_json
from tests.support.tables import TableWriter

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


def test_a_day_of_garbage_fails_its_validation_task(airflow_db, stack, s3_emulator) -> None:
    cache, _ = stack
    run = _run(airflow_db, cache, s3_emulator.endpoint_url, {"day": BAD_DAY, "warmup": False})
    assert run.state == "failed"
    assert run.task_state("warm_inputs") == "skipped"
    assert run.task_state("ingest_events") == "success"  # every line quarantined, nothing lost, no crash
    assert run.task_state("validate_events") == "failed"
    assert run.task_state("metastore_sync") in ("upstream_failed", "skipped")
    assert f"no clean events for {BAD_DAY}: every raw line was quarantined" in run.output


def test_metastore_sync_registers_a_published_table_once_then_changes_nothing(airflow_db, stack, s3_emulator) -> None:
    cache, bucket = stack
    events = TableWriter(s3_emulator.client(), bucket, "warehouse/events_clean")
    events.partition(f"dt={GOOD_DAY}", rows=5, event_id=[f"e{i}" for i in range(5)])
    events.commit()
    source = (DAGS / "metastore_sync.py").read_text()
    env = _env(cache, s3_emulator.endpoint_url)

    first = airflow_db.run_dag("metastore_sync", source, logical_date="2026-11-23", env=env)
    again = airflow_db.run_dag("metastore_sync", source, logical_date="2026-11-24", env=env)

    assert first.state == "success", first.tail(80)
    assert again.state == "success", again.tail(80)
    registered = {r["table"]: r for r in first.xcom("sync")}
    assert registered["telemetry.events_clean"]["changed"] is True
    assert {r["table"]: r["changed"] for r in again.xcom("sync")}["telemetry.events_clean"] is False
    assert "skipped" in registered["telemetry.retention_cohorts"]  # not published yet: nothing to register
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
