"""A real Spark standalone cluster scaled 1 -> 3 -> 1 while an application runs; the application finishes.

The application runs rounds of small tasks until the test tells it to stop (a file), so the test needs no timing
assumption: it scales out, waits until the application holds executors on the three workers, scales in with
graceful decommissioning, lets the application run one more round on the remaining worker, and checks it
succeeded and the decommissioned workers' executors left by decommissioning.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.service_process import is_running
from lakecache_airflow.scaling import cli
from lakecache_airflow.scaling.base import ClusterNotFoundError, Scaler
from lakecache_airflow.scaling.demand import read_spark_master
from lakecache_airflow.scaling.spark_standalone import DaemonRecord, SparkStandaloneCluster, SparkStandaloneScaler

pytestmark = pytest.mark.spark

APP = textwrap.dedent(
    """
    import os, sys, time
    from pyspark.sql import SparkSession

    stop_file = sys.argv[1]
    spark = SparkSession.builder.appName("lakecache-scaling-test").getOrCreate()
    sc = spark.sparkContext

    def work(x):
        time.sleep(0.3)
        return x

    rounds = total = 0
    deadline = time.time() + 900
    while not os.path.exists(stop_file) and time.time() < deadline:
        total += sc.parallelize(range(6), 6).map(work).sum()
        rounds += 1
    total += sc.parallelize(range(6), 6).map(work).sum()  # one more round once the cluster is back to one worker
    rounds += 1
    print(f"DONE rounds={rounds} ok={total == 15 * rounds}", flush=True)
    spark.stop()
    """
)


def wait_for(condition, what: str, timeout: float = 300.0):
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def app_cores(cluster: SparkStandaloneCluster, name: str) -> int | None:
    apps = [a for a in cluster.master_json().get("activeapps", []) if a.get("name") == name]
    return int(apps[0].get("cores") or 0) if apps and apps[0].get("state") == "RUNNING" else None


@pytest.fixture
def application(spark_cluster: SparkStandaloneCluster, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The application submitted to the cluster (client mode), and the file that tells it to finish."""
    script, stop_file = tmp_path / "app.py", tmp_path / "stop"
    script.write_text(APP)
    argv = [str(spark_cluster.spark_submit()), "--master", spark_cluster.master_url]
    argv += ["--conf", "spark.driver.memory=512m", "--conf", "spark.ui.enabled=false", str(script), str(stop_file)]
    process = subprocess.Popen(
        argv,
        env=spark_cluster.submit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        yield process, stop_file
    finally:
        stop_file.touch()
        if process.poll() is None:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def executor_logs(worker: DaemonRecord) -> list[Path]:
    """The stderr logs of the executors ``worker`` has started."""
    return list(Path(worker.work_dir).glob("app-*/*/stderr"))


def test_a_cluster_scaled_one_three_one_lets_a_running_application_finish(
    spark_cluster: SparkStandaloneCluster, application: tuple[subprocess.Popen[str], Path]
) -> None:
    process, stop_file = application
    scaler = SparkStandaloneScaler(spark_cluster)
    assert isinstance(scaler, Scaler)
    assert scaler.current().nodes == 1
    wait_for(lambda: app_cores(spark_cluster, "lakecache-scaling-test"), "the application to run on the worker")

    demand = read_spark_master(spark_cluster.webui_url, app_cores=4)
    assert (demand.running_apps, demand.used_cores, demand.waiting_apps) == (1, 1, 0)

    out = scaler.scale_to(3)
    assert (out.before, out.after) == (1, 3)
    assert scaler.current().cores_total == 3
    # The application takes the new workers' cores: each of them now runs one of its executors. The master counts
    # an executor's cores when it grants them, before the worker has started it: wait for the processes' logs too.
    leaving = sorted(spark_cluster.workers, key=lambda w: w.started_at)[1:]
    wait_for(
        lambda: app_cores(spark_cluster, "lakecache-scaling-test") == 3 and all(map(executor_logs, leaving)),
        "executors running on the three workers",
    )

    back = scaler.scale_to(1)
    assert (back.before, back.after) == (3, 1)
    assert back.notes == (), "a worker had to be stopped before its executors finished"
    state = scaler.current()
    assert state.nodes == 1 and len(spark_cluster.workers) == 1
    for worker in leaving:
        assert not is_running(worker.pid, worker.marker), f"{worker.name} still runs"
        logs = executor_logs(worker)
        assert logs, f"{worker.name} never ran an executor"
        assert any("Decommission executor" in log.read_text(errors="replace") for log in logs), worker.name

    stop_file.touch()
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    assert "ok=True" in output, output[-4000:]
    finished = spark_cluster.master_json().get("completedapps", [])
    assert [a["state"] for a in finished if a["name"] == "lakecache-scaling-test"] == ["FINISHED"]
    assert scaler.current().nodes == 1


def test_clusterctl_attaches_to_the_cluster_by_its_state_dir_and_reports_it(
    spark_cluster: SparkStandaloneCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--backend", "spark", "--state-dir", str(spark_cluster.state_dir), "--json", "status"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"]["nodes"] == 1 and report["state"]["detail"]["master"] == spark_cluster.master_url
    assert report["demand"]["waiting_apps"] == 0
    attached = SparkStandaloneCluster.attach(spark_cluster.state_dir)
    assert attached.master_url == spark_cluster.master_url and [w.name for w in attached.workers] == [
        w.name for w in spark_cluster.workers
    ]


def test_attaching_where_no_cluster_runs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterNotFoundError, match="no Spark standalone cluster in"):
        SparkStandaloneCluster.attach(tmp_path)
