"""Every benchmark section runs end to end at a tiny size and reports the targets ``latest.json`` expects.

The figures themselves are not judged here (a smoke size on a busy machine measures nothing): only that each section
starts its processes, measures, draws its plots, renders, reports its target keys, and stops what it started.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import cluster, http_reads, parquet_lookups, report, run, spark_scan, warmup
from bench.section import Section


def _assert_section(section: Section, name: str, targets: set[str], img_dir: Path) -> None:
    assert section.name == name
    assert set(section.targets) == targets
    for key, value in section.targets.items():
        # A fraction read from S3 may be 0; every other figure is positive.
        assert isinstance(value, bool) or (math.isfinite(value) and (value > 0 or key.endswith("_fraction"))), (
            key,
            value,
        )
        assert key in report.GOALS
    for link in [line.split("](")[1].rstrip(")") for line in section.markdown.splitlines() if line.startswith("![")]:
        assert (img_dir / Path(link).name).stat().st_size > 0
    assert section.command.startswith("python -m ")
    page = report.render([section], "now", False, report.machine())
    assert section.title in page and section.command in page


def test_http_reads_smoke_measures_cache_and_nginx(tmp_path):
    section = http_reads.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    _assert_section(
        section,
        "http_reads",
        {"warm_range_read_median_ms", "warm_range_read_p99_ms", "warm_64k_rps_vs_nginx", "sequential_vs_nginx"},
        tmp_path / "img",
    )
    assert section.results["s3_bytes_read_while_measuring"] == 0


def test_parquet_lookups_smoke_compares_the_s3_model_with_the_cache_over_webhdfs_and_the_s3_api(tmp_path):
    section = parquet_lookups.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    targets = {
        "parquet_lookup_speedup_vs_s3",
        "parquet_lookup_speedup_s3_api",
        "parquet_lookup_fraction_of_bound_webhdfs",
        "parquet_lookup_fraction_of_bound_s3_api",
    }
    _assert_section(section, "parquet_lookups", targets, tmp_path / "img")
    assert section.results["cache_s3_bytes_read_while_measuring"] == 0
    served = section.results["cache_bytes_served_while_measuring"]
    assert served["memory"] > 0 and served.get("disk", 0) == served.get("s3", 0) == 0
    assert set(section.results["worker_ms_per_lookup"]) == set(parquet_lookups.CACHED)
    # nginx answered the same lookups (the rows are checked equal across paths), as the floor for any server.
    assert set(section.results["fraction_of_bound_per_run"]) == set(parquet_lookups.SERVED)
    assert len(section.results["lookup_ms"][parquet_lookups.NGINX]) == 2 * 3


def test_warmup_smoke_times_boto3_and_load_jobs_on_one_worker_and_on_three(tmp_path):
    section = warmup.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    _assert_section(
        section, "warmup", {"warmup_vs_boto3_one_worker", "warmup_vs_boto3_three_workers"}, tmp_path / "img"
    )
    runs = section.results["runs"]
    assert {r["setup"] for r in runs} == {warmup.BOTO3, warmup.BOTO3_ALL, warmup.ONE_WORKER, warmup.THREE_WORKERS}
    (cluster,) = [r for r in runs if r["setup"] == warmup.THREE_WORKERS]
    assert len(cluster["s3_bytes_by_worker"]) == 3  # the load asked of one worker was read by every owner
    assert (
        sum(cluster["s3_bytes_by_worker"])
        == section.results["plan"]["objects"] * section.results["plan"]["object_bytes"]
    )
    # The model's CPU is measured (in clock ticks of 10 ms: one smoke run alone may take less than one).
    assert sum(r["cpu_seconds"][warmup.MODEL] for r in runs) > 0
    assert not list((tmp_path / "work").glob("boto3-*"))  # every download folder removed


def test_eviction_section_draws_its_hit_ratios(tmp_path):
    section = run.eviction_with_plot(False, img_dir=tmp_path / "img")

    _assert_section(section, "eviction", {"eviction_s3fifo_beats_lru_on_scans"}, tmp_path / "img")


def test_ring_section_computes_balance_and_movement_for_every_cluster_size(tmp_path):
    section = run.ring_with_plot(False, img_dir=tmp_path / "img")

    _assert_section(section, "ring", {"ring_max_over_mean_load", "ring_moved_vs_ideal"}, tmp_path / "img")
    rows = section.results["rows"]
    assert [r["workers"] for r in rows] == [3, 4, 8, 16, 32, 64]
    for row in rows:  # a join moves about 1/(N+1) of the blocks and a leave about 1/N, never all or none
        assert 0.5 < row["moved_on_join"] / row["ideal_on_join"] < 1.5
        assert 0.5 < row["moved_on_leave"] / row["ideal_on_leave"] < 1.5
        assert row["min_over_mean"] <= 1.0 <= row["max_over_mean"]


@pytest.mark.spark
def test_spark_scan_smoke_runs_pass_through_cold_and_warm(tmp_path):
    section = spark_scan.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    _assert_section(
        section, "spark_scan", {"spark_warm_speedup_vs_passthrough", "spark_cold_vs_passthrough"}, tmp_path / "img"
    )
    warm = [r for r in section.results["runs"] if r["mode"] == "warm"]
    # A warm scan may stream a page past where a reader stops, one the cold scan never needed: allow a page a run.
    page = 2**20
    assert warm and all(r["s3_bytes_read"] <= page for r in warm)
    assert all(r["served_memory"] + r["served_disk"] > 0 for r in warm)


@pytest.mark.spark
def test_cluster_smoke_scans_through_three_workers_scales_warm_and_reads_from_two(tmp_path):
    section = cluster.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    _assert_section(
        section,
        "cluster",
        {
            "cluster_reread_after_drain_s3_fraction",
            "cluster_reread_after_join_s3_fraction",
            "cluster_two_workers_64k_rps_vs_nginx",
        },
        tmp_path / "img",
    )
    scan = section.results["scan"]
    assert set(scan["seconds"]) == {"cold", "warm", "killed"}
    assert len(scan["kill_point"]) == 1 and 0 < scan["kill_point"][0] < 1  # killed during the scan
    warm = [r for r in scan["runs"] if r["mode"] == "warm"]
    assert sum(1 for share in scan["served_shares"]["warm"][0] if share > 0) >= 2  # blocks served by their owners
    assert all(r["result"] == warm[0]["result"] for r in scan["runs"])
    assert {m["event"] for m in section.results["moves"]["runs"]} == {"join", "drain"}
    reads = section.results["reads"]
    assert reads["s3_bytes_read_while_measuring"] == 0
    assert all(n > 0 for n in reads["blocks_owned"])


def test_targets_table_judges_every_goal_and_marks_the_unmeasured():
    measured = {
        "warm_range_read_median_ms": 0.2,
        "warm_64k_rps_vs_nginx": 0.4,
        "eviction_s3fifo_beats_lru_on_scans": True,
    }

    table = report.targets_table(measured)

    rows = {line.split(" | ")[1].strip("`"): line for line in table.splitlines()[2:]}
    assert set(rows) == set(report.GOALS)
    assert rows["warm_range_read_median_ms"].endswith("| met |")
    assert rows["warm_64k_rps_vs_nginx"].endswith("| **missed** |")
    assert rows["eviction_s3fifo_beats_lru_on_scans"].endswith("| met |")
    assert "not measured" in rows["spark_cold_vs_passthrough"]
