"""What the demo prints about the cache: a row per task that adds up to the run, and one line on what it saved."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

from rich.console import Console

from infra.cache_metrics import CacheCounters
from infra.demo.airflow_home import DagRunRecord
from infra.demo.driver import DEFAULT_S3_MODEL
from infra.demo.pipeline_results import StageRows
from infra.demo.report import savings_line, tasks_table, workers_table
from infra.demo.runs import DemoSummary, EtlRun
from infra.demo.task_costs import OUTSIDE_TASKS
from spark_jobs.telemetry.generator import DayUpload

MIB = 2**20


def etl_run(name: str, wall: float, seconds: dict[str, float], s3_read: dict[str, float]) -> EtlRun:
    # A task that reads S3 misses one page per MiB it reads; the others read nothing.
    tasks = {
        t: CacheCounters(s3_bytes_read=s3_read.get(t, 0.0), page_misses=s3_read.get(t, 0.0) / MIB) for t in seconds
    }
    tasks[OUTSIDE_TASKS] = CacheCounters()
    total = sum(tasks.values(), CacheCounters())
    record = DagRunRecord(
        run_id=name,
        state="success",
        task_states=dict.fromkeys(seconds, "success"),
        task_seconds=seconds,
        task_windows={},
        xcoms={},
        log_path=Path(f"airflow-{name}.log"),
        wall_seconds=wall,
    )
    stages = StageRows(0, 0, 0, 0, {}, 0, {})
    return EtlRun(name, record, stages, (), total, tasks, {}, {})


def summary(cold_wall: float, warm_wall: float) -> DemoSummary:
    cold = etl_run("cold", cold_wall, {"warm_inputs": 15.9, "ingest_events": 110.0}, {"warm_inputs": 200 * MIB})
    warm = etl_run("warm", warm_wall, {"warm_inputs": 0.5, "ingest_events": 130.0}, {})
    raw = DayUpload(uri="s3://lake/raw/", keys=(), lines=1_000, bytes=200 * MIB)
    return DemoSummary(1_000, date(2026, 11, 22), raw, cold, warm, 0.0, DEFAULT_S3_MODEL)


def test_the_savings_line_names_the_bytes_the_time_of_the_tasks_that_read_s3_and_the_whole_run():
    line = savings_line(summary(cold_wall=150.0, warm_wall=100.0))

    assert line == (
        "what the cache saved: 200.0 MiB fewer bytes read from S3, 15.4 s in the tasks that read them cold "
        "(warm_inputs 15.9 s -> 0.5 s); whole run: warm run 1.50x faster (50.0 s saved; cold 150.0 s, warm 100.0 s)"
    )


def test_a_warm_run_slowed_down_by_something_else_is_called_slower_not_faster():
    line = savings_line(summary(cold_wall=130.0, warm_wall=140.0))

    assert line.endswith("whole run: warm run 10.0 s slower (cold 130.0 s, warm 140.0 s)")
    assert "15.4 s in the tasks that read them cold" in line


def test_the_task_table_has_a_row_per_task_then_airflow_then_the_whole_run():
    out = io.StringIO()
    Console(file=out, width=200).print(tasks_table(summary(cold_wall=150.0, warm_wall=100.0)))
    rows = [line for line in out.getvalue().splitlines() if line.startswith("│")]

    assert [row.split("│")[1].strip() for row in rows] == [
        "warm_inputs",
        "ingest_events",
        "Airflow itself (start-up, parsing, between tasks)",
        "whole run",
    ]
    cells = [[cell.strip() for cell in row.split("│")[2:-1]] for row in rows]
    assert cells[0] == ["15.9 s", "200.0 MiB", "0.0%", "0.5 s", "0.0 MiB", "-"]
    assert cells[2][0] == "24.1 s"  # the run's wall time less its tasks' time: Airflow's own
    assert cells[3] == ["150.0 s", "200.0 MiB", "0.0%", "100.0 s", "0.0 MiB", "-"]


def test_on_a_cluster_each_worker_has_a_row_of_what_it_served_and_the_cluster_adds_them_up():
    urls = ["http://127.0.0.1:9871", "http://127.0.0.1:9872", "http://127.0.0.1:9873"]
    cold_workers = {
        urls[0]: CacheCounters(s3_bytes_read=120 * MIB, bytes_served={"disk": 50 * MIB}, page_misses=120),
        urls[1]: CacheCounters(s3_bytes_read=80 * MIB, bytes_served={"memory": 10 * MIB, "disk": 30 * MIB}),
        urls[2]: CacheCounters(),
    }
    warm_workers = {
        urls[0]: CacheCounters(bytes_served={"memory": 20 * MIB, "disk": 30 * MIB}, page_hits={"disk": 50}),
        urls[1]: CacheCounters(bytes_served={"disk": 40 * MIB}, page_hits={"disk": 40}),
        urls[2]: CacheCounters(),
    }
    base = summary(cold_wall=150.0, warm_wall=100.0)
    cluster = replace(
        base,
        cold=replace(base.cold, workers=cold_workers, cache=sum(cold_workers.values(), CacheCounters())),
        warm=replace(base.warm, workers=warm_workers, cache=sum(warm_workers.values(), CacheCounters())),
        worker_ids=dict(zip(urls, ["w-000000000001", "w-000000000002", "w-000000000003"], strict=True)),
    )
    out = io.StringIO()
    Console(file=out, width=240).print(workers_table(cluster))
    printed = out.getvalue()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in printed.splitlines() if line.startswith("│")]

    assert rows == [
        ["w-000000000001", urls[0], "50.0 MiB", "120.0 MiB", "0.0%", "50.0 MiB", "0.0 MiB", "100.0%"],
        ["w-000000000002", urls[1], "40.0 MiB", "80.0 MiB", "-", "40.0 MiB", "0.0 MiB", "100.0%"],
        ["w-000000000003", urls[2], "0.0 MiB", "0.0 MiB", "-", "0.0 MiB", "0.0 MiB", "-"],
        ["cluster", "3 workers", "90.0 MiB", "200.0 MiB", "0.0%", "90.0 MiB", "0.0 MiB", "100.0%"],
    ]
    assert "2 of 3 workers served bytes in the warm run" in " ".join(printed.split())
