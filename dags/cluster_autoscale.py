"""cluster_autoscale: size the compute cluster every 10 minutes with the autoscaling policy (docs/autoscaling.md).

Each run evaluates the policy (peak windows, waiting Spark applications, cache pressure, bounds, cooldowns) and
applies its decision; the task log lists the decision and its reasons, and XCom holds them. Before a peak window
opens it starts the cache warmup of that window's datasets.

When the policy file has a ``[backend.cache]`` table, the cache cluster follows the compute cluster: the ``scale``
task drains the cache worker of every node it removes before the node is stopped (a drain that fails stops the
scale-in, and the task fails saying why), and ``cache_workers_joined`` waits after a scale-out, deferred to the
triggerer, until each new node's cache worker is active in the cache cluster (failing after ``join_timeout`` with the
nodes still missing one).

The policy file is the ``config`` param, or else the Variable ``lakecache_autoscale_config`` (a TOML path).
``dry_run`` (or ``dry_run = true`` in the file) only logs what would be done; ``backend`` overrides the file's
``[backend] kind``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag

from lakecache_airflow.operators.cache_workers_joined import CacheWorkersJoinedOperator
from lakecache_airflow.operators.cluster_scale import ClusterScaleOperator

CONFIG = "{{ params.config or var.value.get('lakecache_autoscale_config', '') }}"


@dag(
    dag_id="cluster_autoscale",
    schedule="*/10 * * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    # One evaluation at a time: two runs scaling the same cluster at once would fight.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    render_template_as_native_obj=True,
    params={
        "dry_run": Param(False, type="boolean", description="Decide and log only; change nothing"),
        "backend": Param(
            None,
            type=["null", "string"],
            enum=[None, "spark", "asg", "emr"],
            description="Override the policy file's [backend] kind",
        ),
        "config": Param(
            "", type="string", description="Policy file (TOML); empty: the Variable lakecache_autoscale_config"
        ),
    },
    tags=["lakecache", "autoscaling"],
    doc_md=__doc__,
)
def cluster_autoscale() -> None:
    scale = ClusterScaleOperator(
        task_id="scale",
        config=CONFIG,
        backend="{{ params.backend }}",
        dry_run="{{ params.dry_run }}",
    )
    CacheWorkersJoinedOperator(
        task_id="cache_workers_joined",
        scaled=scale.output,
        config=CONFIG,
        backend="{{ params.backend }}",
    )


cluster_autoscale()
