"""metastore_sync: register the telemetry tables in the catalog whenever the ETL publishes them, and on demand.

Runs on the ETL's Assets (any of the published tables updated). Params: ``catalog`` (glue or hive), ``dry_run``,
``drop_missing`` (drop partitions whose data left storage).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import AssetAny, Param, dag

from lakecache_airflow.assets import PUBLISHED
from lakecache_airflow.operators.metastore import MetastoreSyncOperator


@dag(
    dag_id="metastore_sync",
    schedule=AssetAny(*(table.asset for table in PUBLISHED)),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "dry_run": Param(False, type="boolean", description="Only compute what would change"),
        "drop_missing": Param(False, type="boolean", description="Drop partitions whose data left storage"),
    },
    tags=["lakecache", "catalog"],
    doc_md=__doc__,
)
def metastore_sync() -> None:
    MetastoreSyncOperator(
        task_id="sync",
        tables=[table.to_dict() for table in PUBLISHED],
        dry_run="{{ params.dry_run }}",
        drop_missing="{{ params.drop_missing }}",
    )


metastore_sync()
