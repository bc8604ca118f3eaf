"""``docs/airflow.md`` says what the code does: its example DAG builds, and its JSON examples are JSON."""

from __future__ import annotations

import json
import re

from airflow.sdk import DAG

from lakecache_airflow.operators.maintenance import CacheTtlSweepOperator
from lakecache_airflow.operators.purge import CachePurgeOperator
from lakecache_airflow.operators.warmup import CacheWarmupOperator
from tests.plugins.airflow_home import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "airflow.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC, flags=re.S | re.M)


def test_the_example_dag_builds_with_the_documented_operators() -> None:
    example = next(block for block in blocks("python") if "with DAG(" in block)
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/airflow.md", "exec"), namespace)
    dag = next(value for value in namespace.values() if isinstance(value, DAG))
    tasks = {task.task_id: task for task in dag.tasks}
    assert isinstance(tasks["sweep_ttl"], CacheTtlSweepOperator)
    assert isinstance(tasks["make_room"], CachePurgeOperator)
    assert isinstance(tasks["warmup"], CacheWarmupOperator)
    assert tasks["warmup"].upstream_task_ids == {"make_room"}


def test_the_json_examples_are_json() -> None:
    for block in blocks("json"):
        json.loads(block)
