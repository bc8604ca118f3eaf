"""cache_warmup: bring the datasets the morning peak will read into the cache, at 05:30 UTC and on demand.

Trigger it from the UI with other ``paths`` (files, directories or globs under a mount) and ``parallelism``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag

from lakecache_airflow.operators.warmup import CacheWarmupOperator

PATH_SCHEMA = {"type": "string", "pattern": "^/[^\\u0000]*$", "minLength": 2}


@dag(
    dag_id="cache_warmup",
    schedule="30 5 * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "paths": Param(
            ["/warehouse/agg", "/warehouse/events_clean"],
            type="array",
            items=PATH_SCHEMA,
            minItems=1,
            description="Cache paths, directories or globs to load (absolute, under a mount)",
        ),
        "parallelism": Param(4, type="integer", minimum=1, maximum=64, description="Pages fetched at once"),
    },
    tags=["lakecache", "cache"],
    doc_md=__doc__,
)
def cache_warmup() -> None:
    CacheWarmupOperator(task_id="warm", paths="{{ params.paths }}", parallelism="{{ params.parallelism }}")


cache_warmup()
