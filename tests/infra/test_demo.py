"""``make demo``: the daily ETL DAG runs cold then warm through the local stack, with the S3 latency model between
the cache and the emulator; the warm run reads (nearly) nothing from S3, the figures per task add up to the run's,
every stage's rows reconcile, every data-quality suite passes, and one line says what the cache saved."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from rich.console import Console

from infra.demo import DemoError
from infra.demo.airflow_home import AirflowHome
from infra.demo.cli import main, parser, s3_model_choice, workers_choice
from infra.demo.driver import DEFAULT_S3_MODEL, run_demo
from infra.demo.runs import DEMO_DAY, run_etl
from infra.demo.task_costs import OUTSIDE_TASKS
from infra.s3_model import S3ModelConfig
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


@pytest.mark.parametrize("value", ["0", "9", "three", "-1", "2.5"])
def test_a_bad_worker_count_is_a_one_line_error_and_starts_nothing(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv("DEMO_WORKERS", value)

    code = main(["--events", "5000", "--state-dir", str(tmp_path / "demo")])

    assert code == 1
    assert capsys.readouterr().err == f"demo failed: DEMO_WORKERS must be a whole number from 1 to 8, got {value!r}\n"
    assert not (tmp_path / "demo").exists()


def test_one_worker_unless_demo_workers_or_the_flag_says_otherwise():
    assert workers_choice(None, {}) == 1
    assert workers_choice(None, {"DEMO_WORKERS": ""}) == 1
    assert workers_choice(None, {"DEMO_WORKERS": " 3 "}) == 3
    assert workers_choice(2, {"DEMO_WORKERS": "3"}) == 2
    with pytest.raises(DemoError, match="--workers must be a whole number from 1 to 8, got '12'"):
        workers_choice(12, {})


def test_too_few_events_is_a_one_line_error_and_starts_nothing(tmp_path, capsys):
    code = main(["--events", "10", "--state-dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err
    assert code == 1
    assert err == "demo failed: the demo needs at least 1,000 events, got 10\n"
    assert not (tmp_path / "demo").exists()


def test_demo_refuses_to_wipe_a_state_dir_whose_stack_still_runs(tmp_path):
    with LocalStack(tmp_path / "demo"), pytest.raises(DemoError, match="already runs"):
        run_demo(1_000, tmp_path / "demo", console=Console(file=io.StringIO()))


def test_the_s3_model_is_on_by_default_and_off_with_the_flag_or_the_variable():
    def choice(*argv: str, **environ: str) -> S3ModelConfig | None:
        return s3_model_choice(parser().parse_args(list(argv)), environ)

    assert choice() == DEFAULT_S3_MODEL == S3ModelConfig(latency=0.030, bandwidth=90e6)
    assert choice("--s3-latency-ms", "80", "--s3-bandwidth-mbps", "0") == S3ModelConfig(latency=0.080, bandwidth=0)
    assert choice("--no-s3-model") is None
    assert choice(DEMO_S3_MODEL="0") is None
    assert choice(DEMO_S3_MODEL="1") == DEFAULT_S3_MODEL
    with pytest.raises(DemoError, match="must not be negative"):
        choice("--s3-latency-ms", "-1")


def test_without_the_model_the_cache_reads_the_emulator_directly_and_with_it_the_model(tmp_path):
    direct = LocalStack(tmp_path / "direct", s3_model=None)
    modelled = LocalStack(tmp_path / "modelled", s3_model=DEFAULT_S3_MODEL)

    assert direct.s3_model is None
    assert direct.cache.config["under_store"]["endpoint_url"] == direct.s3_endpoint == direct.under_store_endpoint
    assert modelled.s3_model is not None
    assert modelled.cache.config["under_store"]["endpoint_url"] == modelled.s3_model.url
    assert modelled.s3_model.upstream == modelled.s3_endpoint != modelled.s3_model.url
    assert (modelled.s3_model.latency_ms, modelled.s3_model.bandwidth_mbps) == (30, 90)


@pytest.mark.spark
@pytest.mark.airflow
# Two DAG runs, four spark-submits, three workers: about 3 minutes on 2 cores, twice that when other work shares
# them. The demo's default is one worker, which is the same code with a ring of one (and no Redis); the suite runs the
# demo once, on the cluster, since everything a single worker's run shows holds there too.
@pytest.mark.timeout(1800)
def test_the_dag_runs_cold_then_warm_through_three_workers_as_a_nameservice_and_the_warm_run_reads_almost_nothing(
    tmp_path,
):
    state_dir = tmp_path / "demo"
    (state_dir / "leftover").mkdir(parents=True)
    out = io.StringIO()

    summary = run_demo(5_000, state_dir, workers=3, console=Console(file=out, width=240))

    cold, warm = summary.cold, summary.warm
    assert summary.raw.lines == 5_000
    for run in (cold, warm):
        assert run.record.state == "success"
        assert run.record.task_states == dict.fromkeys(DAG_TASKS, "success")
    # The cold run reads the day's raw input from S3 (its warmup does); the warm run finds it all in the cache,
    # and the tables the cold run wrote through the cache too.
    assert summary.s3_model == DEFAULT_S3_MODEL
    assert cold.s3_bytes_read >= summary.raw.bytes
    assert warm.s3_bytes_read < 0.05 * cold.s3_bytes_read, (warm.s3_bytes_read, cold.s3_bytes_read)
    assert warm.served("memory") + warm.served("disk") > 0
    assert warm.warmup["bytes_from_s3"] == 0

    # Every task has its row, with figures that make sense, and the rows add up to the whole run.
    for run in (cold, warm):
        assert set(run.tasks) == DAG_TASKS | {OUTSIDE_TASKS}
        for task, counters in run.tasks.items():
            assert run.task_seconds(task) >= 0, task
            assert counters.s3_bytes_read >= -1, (task, counters)  # float crumbs of the split, never a real debit
            assert counters.page_misses >= -1e-6 and all(h >= -1e-6 for h in counters.page_hits.values())
            assert 0.0 <= counters.hit_ratio <= 1.0
        per_task = sum(c.s3_bytes_read for c in run.tasks.values())
        assert per_task == pytest.approx(run.s3_bytes_read, abs=1024), (run.name, per_task, run.s3_bytes_read)
    # The warmup is what reads the raw input: most of the cold run's S3 bytes fall in its window.
    assert cold.tasks["warm_inputs"].s3_bytes_read >= 0.5 * cold.s3_bytes_read, dict(cold.tasks)

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
    for heading in ("rows per stage", "data quality (Great Expectations)", "cold vs warm", "task by task"):
        assert heading in printed
    for task in DAG_TASKS:
        assert task in printed
    assert "S3 latency model, 30 ms to first byte, 90 MB/s per connection" in printed
    savings = [line for line in printed.splitlines() if line.startswith("what the cache saved: ")]
    assert len(savings) == 1, printed
    assert "fewer bytes read from S3, " in savings[0]
    assert "in the tasks that read them cold (warm_inputs " in savings[0]
    assert "; whole run: warm run " in savings[0]

    # On three workers: each worker's figures, the warmup's placement, Spark's HA settings.
    for run in (cold, warm):  # each worker's figures are its own, and together they are the cluster's
        assert set(run.workers) == set(summary.worker_ids)
        total = sum(c.s3_bytes_read for c in run.workers.values())
        assert total == pytest.approx(run.s3_bytes_read, abs=1)
    assert len(set(summary.worker_ids.values())) == 3
    # The warmup filled every block's owner: the warm run finds the raw input cached wherever Spark's reads land.
    assert warm.tasks["ingest_events"].s3_bytes_read < 1024, dict(warm.tasks)
    serving = [url for url, c in warm.workers.items() if sum(c.bytes_served.values()) > 0]
    assert len(serving) > 1, {url: dict(c.bytes_served) for url, c in warm.workers.items()}

    # The Spark jobs were given Hadoop's HA settings for the live cluster and addressed it by its nameservice.
    conf = (state_dir / "airflow" / "spark-conf" / "spark-defaults.conf").read_text()
    assert "spark.hadoop.dfs.nameservices lakecache\n" in conf
    for url, worker in summary.worker_ids.items():
        assert f"spark.hadoop.dfs.namenode.http-address.lakecache.{worker} {url.removeprefix('http://')}\n" in conf
    cold_log = cold.record.log_path.read_text()
    assert "webhdfs://lakecache/raw/events/dt=2026-11-22" in cold_log
    assert "a cache cluster of 3 workers" in printed and "webhdfs://lakecache" in printed
    assert "bytes served per worker" in printed
    for worker in summary.worker_ids.values():
        assert worker in printed
