"""``make demo``: the daily ETL DAG runs cold then warm through the local stack; the warm run reads (nearly) nothing
from S3, every stage's rows reconcile and every data-quality suite passes."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from rich.console import Console

from infra.demo import DEMO_DAY, AirflowHome, DemoError, main, run_demo, run_etl
from infra.stack import LocalStack, StackInfo

DAG_TASKS = {
    "plan_warmup",
    "warm_inputs",
    "ingest_events",
    "validate_events",
    "daily_aggregates",
    "validate_aggregates",
    "metastore_sync",
}


@pytest.mark.spark
@pytest.mark.airflow
def test_the_dag_runs_cold_then_warm_and_the_warm_run_reads_almost_nothing_from_s3(tmp_path):
    state_dir = tmp_path / "demo"
    (state_dir / "leftover").mkdir(parents=True)
    out = io.StringIO()

    summary = run_demo(5_000, state_dir, console=Console(file=out, width=200))

    cold, warm = summary.cold, summary.warm
    assert summary.raw.lines == 5_000
    for run in (cold, warm):
        assert run.record.state == "success"
        assert run.record.task_states == dict.fromkeys(DAG_TASKS, "success")
    # The cold run reads the day's raw input from S3 (its warmup does); the warm run finds it all in the cache,
    # and the tables the cold run wrote through the cache too.
    assert cold.s3_bytes_read >= summary.raw.bytes
    assert warm.s3_bytes_read < 0.05 * cold.s3_bytes_read, (warm.s3_bytes_read, cold.s3_bytes_read)
    assert warm.served("memory") + warm.served("disk") > 0
    assert warm.warmup["bytes_from_s3"] == 0

    stages = cold.stages
    assert stages.raw_lines == 5_000
    assert stages.raw_lines == stages.clean + stages.duplicates + stages.quarantined
    assert stages.reconciles
    assert stages.duplicates > 0 and stages.quarantined > 0  # the generator breaks 2% of the lines on purpose
    assert sum(stages.quarantined_by_reason.values()) == stages.quarantined
    assert stages.clean_validated == stages.clean
    assert stages.aggregates["sessions_daily"] == 1
    assert stages.aggregates["daily_active_users"] > 1  # one row per platform, plus "all"
    assert warm.stages == cold.stages  # rerunning the day replaces its partitions with the same rows

    for run in (cold, warm):
        assert {q.table for q in run.quality} >= {"events_clean", "daily_active_users", "sessions_daily"}
        assert all(q.success and q.failed == 0 and q.evaluated > 0 for q in run.quality)
        assert all(q.path.is_file() for q in run.quality)
    assert cold.catalog["events_clean"] == "new table, +1 partition"
    assert warm.catalog["events_clean"] == "1 partition replaced"

    assert not (state_dir / "leftover").exists()  # the state directory is wiped at start
    assert StackInfo.read(state_dir) is None  # and the stack is stopped at the end
    printed = out.getvalue()
    for heading in ("rows per stage", "data quality (Great Expectations)", "cold vs warm", "S3 bytes read: cold"):
        assert heading in printed


@pytest.mark.airflow
def test_a_failed_dag_run_names_the_task_that_failed_and_shows_what_it_logged(tmp_path):
    # No raw data was written: the warmup of the day's raw input finds nothing to load.
    with LocalStack(tmp_path / "stack") as stack, pytest.raises(DemoError) as failure:
        home = AirflowHome(tmp_path / "airflow", stack)
        home.migrate()
        run_etl(stack, home, "cold", DEMO_DAY, tmp_path)

    first_line, _, excerpt = str(failure.value).partition("\n")
    assert first_line.startswith("the cold run of telemetry_daily_etl ended failed (warm_inputs failed")
    assert "what warm_inputs logged" in first_line
    assert f"/raw/events/dt={DEMO_DAY}" in excerpt
    assert (tmp_path / "airflow-cold.log").is_file()
    assert str(DEMO_DAY + timedelta(days=1)) in (tmp_path / "airflow-cold.log").read_text()


def test_bad_event_count_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEMO_EVENTS", "lots")

    code = main(["--state-dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("demo failed: DEMO_EVENTS must be a positive whole number")
    assert err.count("\n") == 1


def test_too_few_events_is_a_one_line_error_and_starts_nothing(tmp_path, capsys):
    code = main(["--events", "10", "--state-dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err
    assert code == 1
    assert err == "demo failed: the demo needs at least 1,000 events, got 10\n"
    assert not (tmp_path / "demo").exists()


def test_demo_refuses_to_wipe_a_state_dir_whose_stack_still_runs(tmp_path):
    with LocalStack(tmp_path / "demo"), pytest.raises(DemoError, match="already runs"):
        run_demo(1_000, tmp_path / "demo", console=Console(file=io.StringIO()))
