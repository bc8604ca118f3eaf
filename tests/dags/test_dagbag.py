"""Every DAG in ``dags/`` imports cleanly, with no deprecated import, and has the schedule users rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(%(dags)r)
ours = [
    f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
    for w in caught
    if issubclass(w.category, DeprecationWarning) and ("/dags/" in w.filename or "lakecache_airflow" in w.filename)
]
print(json.dumps({
    "errors": {k: v[-500:] for k, v in bag.import_errors.items()},
    "warnings": ours,
    "dags": {
        dag_id: {
            "schedule": str(dag.schedule),
            "catchup": dag.catchup,
            "params": sorted(dag.params.keys()),
            "tasks": sorted(dag.task_ids),
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE % {"dags": str(ROOT / "dags")}],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_dag_imports_without_errors_or_deprecated_imports(dagbag) -> None:
    assert dagbag["errors"] == {}
    assert dagbag["warnings"] == []
    assert set(dagbag["dags"]) == {
        "telemetry_daily_etl",
        "cache_warmup",
        "cache_purge",
        "cache_maintenance",
        "metastore_sync",
        *({"cluster_autoscale"} if (ROOT / "dags" / "cluster_autoscale.py").exists() else set()),
    }


def test_schedules_are_what_users_rely_on(dagbag) -> None:
    dags = dagbag["dags"]
    assert dags["telemetry_daily_etl"]["schedule"] == "0 2 * * *" and dags["telemetry_daily_etl"]["catchup"] is False
    assert dags["cache_maintenance"]["schedule"] == "*/15 * * * *"
    assert dags["cache_purge"]["schedule"] == "None"
    assert dags["cache_purge"]["params"] == ["dry_run", "paths", "target"]
    assert dags["cache_warmup"]["params"] == ["parallelism", "paths"]
    assert "telemetry" in dags["metastore_sync"]["schedule"] or "Asset" in dags["metastore_sync"]["schedule"]


def test_the_etl_has_its_stages(dagbag) -> None:
    assert dagbag["dags"]["telemetry_daily_etl"]["tasks"] == [
        "daily_aggregates",
        "ingest_events",
        "metastore_sync",
        "plan_warmup",
        "validate_aggregates",
        "validate_events",
        "warm_inputs",
    ]
