"""cache_maintenance: every 15 minutes, purge under pressure (above the high watermark, down to the low one) and
free pages whose TTL ran out. The cache does both on its own too; this keeps them visible and auditable in Airflow."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag

from lakecache_airflow.operators.maintenance import CacheTtlSweepOperator
from lakecache_airflow.operators.purge import CachePurgeOperator


@dag(
    dag_id="cache_maintenance",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["lakecache", "cache"],
    doc_md=__doc__,
)
def cache_maintenance() -> None:
    CachePurgeOperator(task_id="purge_under_pressure") >> CacheTtlSweepOperator(task_id="ttl_sweep")


cache_maintenance()
