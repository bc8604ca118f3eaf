"""cache_purge: the on-call runbook's purge, from the Airflow UI (docs/runbooks/purge.md).

Trigger with the form: ``target`` (fraction of capacity to purge down to), ``dry_run`` (default on: look first),
``paths`` (limit the purge to these paths; empty = the whole cache). The purge runs when the cache is above the
target; pinned pages, pages being read and staged data are never taken. What was (or would be) freed, and why a
target was not reached, is in the task's XCom and log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag

from lakecache_airflow.operators.purge import CachePurgeOperator


@dag(
    dag_id="cache_purge",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        # The bounds sit inside ``allOf`` on purpose: the UI clamps a number field to a top-level minimum/maximum
        # (a typed 1.5 silently becomes 1, -0.5 becomes 0), while Airflow checks ``allOf`` at trigger time and
        # refuses the run with the schema's message, which is what an on-call engineer should see.
        "target": Param(
            0.6,
            type="number",
            allOf=[{"minimum": 0}, {"maximum": 1}],
            description="Purge down to this fraction of capacity, from 0 to 1 (0.6 leaves the cache 60% full)",
        ),
        "dry_run": Param(True, type="boolean", description="Only list what would be freed"),
        "paths": Param(
            [],
            type=["array", "null"],  # "null" marks it optional in the form: empty means the whole cache
            items={"type": "string", "pattern": "^/[^\\u0000]*$", "minLength": 2},
            description="Only purge pages of these paths (empty: the whole cache)",
        ),
    },
    tags=["lakecache", "cache", "runbook"],
    doc_md=__doc__,
)
def cache_purge() -> None:
    CachePurgeOperator(
        task_id="purge",
        # On demand, the threshold is the target itself: purge whenever the cache holds more than asked for.
        threshold="{{ params.target }}",
        target="{{ params.target }}",
        dry_run="{{ params.dry_run }}",
        paths="{{ params.paths or None }}",
    )


cache_purge()
