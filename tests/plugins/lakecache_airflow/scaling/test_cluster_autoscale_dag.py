"""The ``cluster_autoscale`` DAG (``dags/cluster_autoscale.py`` as is) through ``airflow dags test``.

Two setups, real services only: a dry run against the session's Spark standalone cluster (the decision is logged
and pushed, nothing changes), and applied runs against an Auto Scaling group on the emulator with a real cache to
warm up (the group is resized, the warmup is started once, and the second run remembers both).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster, SparkStandaloneScaler
from tests.plugins.airflow_home import REPO_ROOT, AirflowHome, DagRun, connection_json
from tests.plugins.cache_data import DAY_BYTES, DAY_PATH, cached_bytes, events_cache
from tests.plugins.lakecache_airflow.scaling.aws_support import client, create_group

pytestmark = [pytest.mark.airflow, pytest.mark.spark]

DAG_ID = "cluster_autoscale"
DAG_SOURCE = (REPO_ROOT / "dags" / "cluster_autoscale.py").read_text()


def clock(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def windows(now: datetime, *, target: int, warmup: str | None = None) -> str:
    """A daily window open now (UTC) and, if ``warmup``, one opening in 35 minutes that warms ``warmup`` up."""
    text = f"""
[[windows]]
name = "now"
start = "{clock(now - timedelta(hours=1))}"
end = "{clock(now + timedelta(minutes=25))}"
target = {target}
"""
    if warmup:
        text += f"""
[[windows]]
name = "next"
start = "{clock(now + timedelta(minutes=35))}"
end = "{clock(now + timedelta(minutes=95))}"
target = 1
warmup = ["{warmup}"]
"""
    return text


# --- a dry run on the Spark standalone cluster ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_dry_run(airflow_db: AirflowHome, spark_cluster: SparkStandaloneCluster, tmp_path_factory) -> DagRun:
    policy = tmp_path_factory.mktemp("spark-policy") / "policy.toml"
    policy.write_text(
        f"""
min_nodes = 1
max_nodes = 3
dry_run = true
scale_lead = "0m"
warmup_lead = "1h"
{windows(datetime.now(UTC), target=2, warmup="/warehouse/events")}
[backend]
kind = "spark"
[backend.spark]
state_dir = "{spark_cluster.state_dir}"
"""
    )
    env = {"AIRFLOW_VAR_LAKECACHE_AUTOSCALE_CONFIG": str(policy)}
    return airflow_db.run_dag(DAG_ID, DAG_SOURCE, logical_date="2026-11-20", env=env)


def test_a_dry_run_logs_and_pushes_the_decision_and_changes_nothing(
    spark_dry_run: DagRun, spark_cluster: SparkStandaloneCluster
) -> None:
    run = spark_dry_run
    assert run.task_state("scale") == "success", run.tail()
    pushed = run.xcom("scale")
    decision = pushed["decision"]
    assert (decision["action"], decision["current"], decision["target"], decision["dry_run"]) == (
        "scale_out",
        1,
        2,
        True,
    )
    assert pushed["result"] is None and pushed["warmup_job"] is None
    assert pushed["state"]["nodes"] == 1 and pushed["demand"]["used_cores"] == 0
    assert "Autoscaling decision at" in run.output and "scale_out 1 -> 2 (dry run)" in run.output
    for reason in decision["reasons"]:
        assert f"because: {reason}" in run.output
    assert any("window 'now'" in r and "is open: at least 2 nodes" in r for r in decision["reasons"])
    assert "Dry run: would warm up /warehouse/events" in run.output
    assert SparkStandaloneScaler(spark_cluster).current().nodes == 1


# --- applied runs on an Auto Scaling group, with a cache to warm up -------------------------------------------------


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    """A cache mounting ``/warehouse`` on a bucket of events (``tests.plugins.cache_data``)."""
    with events_cache(s3_emulator, tmp_path_factory.mktemp("autoscale-cache")) as cache:
        yield cache


@pytest.fixture(scope="module")
def asg_runs(airflow_db: AirflowHome, s3_emulator, cache: CacheProcess, tmp_path_factory) -> tuple[str, DagRun, DagRun]:
    group = create_group(s3_emulator.endpoint_url, min_size=1, max_size=5, desired=1)
    policy: Path = tmp_path_factory.mktemp("asg-policy") / "policy.toml"
    policy.write_text(
        f"""
min_nodes = 1
max_nodes = 5
scale_lead = "0m"
warmup_lead = "1h"
[reactive]
enabled = false
{windows(datetime.now(UTC), target=3, warmup=DAY_PATH)}
[backend]
kind = "asg"
[backend.asg]
group = "{group}"
endpoint_url = "{s3_emulator.endpoint_url}"
"""
    )
    env = {
        **EMULATOR_CREDENTIALS,
        "AIRFLOW_VAR_LAKECACHE_AUTOSCALE_CONFIG": str(policy),
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache),
    }
    first = airflow_db.run_dag(DAG_ID, DAG_SOURCE, logical_date="2026-11-21", env=env)
    second = airflow_db.run_dag(DAG_ID, DAG_SOURCE, logical_date="2026-11-22", env=env)
    return group, first, second


def test_an_applied_run_resizes_the_group_and_starts_the_warmup(
    asg_runs: tuple[str, DagRun, DagRun], s3_emulator, cache: CacheProcess
) -> None:
    group, first, _ = asg_runs
    assert first.task_state("scale") == "success", first.tail()
    pushed = first.xcom("scale")
    assert (pushed["decision"]["action"], pushed["decision"]["target"]) == ("scale_out", 3)
    assert pushed["result"]["after"] == 3 and pushed["result"]["retries"] == []
    answer = client("autoscaling", s3_emulator.endpoint_url).describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert answer["AutoScalingGroups"][0]["DesiredCapacity"] == 3
    assert pushed["warmup_job"], first.tail()
    assert f"Started cache warmup job {pushed['warmup_job']}" in first.output
    deadline = time.monotonic() + 120
    while cached_bytes(cache, DAY_PATH) < DAY_BYTES and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cached_bytes(cache, DAY_PATH) == DAY_BYTES


def test_the_next_run_remembers_the_change_and_the_warmup(asg_runs: tuple[str, DagRun, DagRun]) -> None:
    _, _, second = asg_runs
    assert second.task_state("scale") == "success", second.tail()
    pushed = second.xcom("scale")
    assert (pushed["decision"]["action"], pushed["decision"]["current"]) == ("hold", 3)
    assert pushed["decision"]["warmup"] is None and pushed["warmup_job"] is None
