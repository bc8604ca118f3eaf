"""``make demo``: the scan runs cold then warm through the local stack, and the warm run reads nothing from S3."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from infra.demo import DemoError, main, run_demo, submit_scan
from infra.stack import LocalStack, StackInfo

pytestmark = pytest.mark.spark


def test_warm_run_reads_nothing_from_s3_and_gives_the_cold_runs_answer(tmp_path):
    state_dir = tmp_path / "demo"
    (state_dir / "leftover").mkdir(parents=True)
    out = io.StringIO()

    summary = run_demo(20_000, state_dir, console=Console(file=out, width=200))

    assert summary.table.rows == 20_000
    assert summary.cold.rows == summary.warm.rows == 20_000
    assert summary.cold.s3_bytes_read > 0
    assert summary.warm.s3_bytes_read == 0
    assert summary.warm.served_from_cache > 0
    assert summary.warm.page_misses == 0
    assert summary.warm.hit_ratio == 1.0
    assert summary.cold.result["groups"] == summary.warm.result["groups"]
    assert not (state_dir / "leftover").exists()  # the state directory is wiped at start
    assert StackInfo.read(state_dir) is None  # and the stack is stopped at the end
    printed = out.getvalue()
    assert "cold" in printed
    assert "warm" in printed
    assert "S3 bytes read" in printed


def test_bad_event_count_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEMO_EVENTS", "lots")

    code = main(["--state-dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("demo failed: DEMO_EVENTS must be a positive whole number")
    assert err.count("\n") == 1


def test_demo_refuses_to_wipe_a_state_dir_whose_stack_still_runs(tmp_path):
    with LocalStack(tmp_path / "demo"), pytest.raises(DemoError, match="already runs"):
        run_demo(1_000, tmp_path / "demo", console=Console(file=io.StringIO()))


def test_a_failed_spark_job_is_reported_with_the_tail_of_its_log(tmp_path):
    with LocalStack(tmp_path / "stack") as stack, pytest.raises(DemoError) as failure:
        submit_scan(stack, "cold", f"{stack.webhdfs_uri}/warehouse/no_such_table", tmp_path)

    first_line, _, tail = str(failure.value).partition("\n")
    assert first_line.startswith("spark-submit (cold run) exited with code ")
    assert "PATH_NOT_FOUND" in tail or "does not exist" in tail
