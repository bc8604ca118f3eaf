"""``spark_jobs/scan_events.py`` under ``spark-submit`` reads a table through the cache and aggregates it right."""

from __future__ import annotations

import json
import os
import subprocess

import pyarrow as pa
import pytest

from infra.cache_metrics import CacheCounters
from infra.cache_process import REPO_ROOT
from infra.game_events import SCAN_JOB, game_event_files, upload_event_files
from infra.spark_submit import spark_submit_argv, spark_submit_env

pytestmark = pytest.mark.spark


def _spark_submit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        spark_submit_argv(SCAN_JOB, *args),
        cwd=REPO_ROOT,
        env=spark_submit_env(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _expected(table: pa.Table) -> tuple[dict, dict]:
    """The job's aggregate, computed by pyarrow: per (platform, event_type) and for the whole table."""
    by_group = table.group_by(["platform", "event_type"]).aggregate(
        [("event_id", "count"), ("amount", "sum"), ("player_id", "count_distinct")]
    )
    groups = {
        (row["platform"], row["event_type"]): (
            row["event_id_count"],
            round(row["amount_sum"], 2),
            row["player_id_count_distinct"],
        )
        for row in by_group.to_pylist()
    }
    totals = {
        "rows": table.num_rows,
        "distinct_players": len(set(table.column("player_id").to_pylist())),
        "revenue": round(sum(table.column("amount").to_pylist()), 2),
    }
    return groups, totals


def test_scan_aggregates_match_pyarrow_over_the_same_files(cache_factory, bucket, s3_client, tmp_path):
    files = list(game_event_files(6_000, days=3, files_per_day=2, seed=11))
    upload_event_files(s3_client, bucket, "warehouse/events", files)
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    output = tmp_path / "summary.json"

    done = _spark_submit("--input", f"{cache.webhdfs_uri}/warehouse/events", "--output-json", str(output))

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(output.read_text())
    groups, totals = _expected(pa.concat_tables(table for _, table in files))
    assert summary["rows"] == totals["rows"] == 6_000
    assert summary["distinct_players"] == pytest.approx(totals["distinct_players"], rel=0.02)
    assert summary["revenue"] == pytest.approx(totals["revenue"], abs=0.01)
    assert summary["aggregate_rows"] == len(groups) == len(summary["groups"])
    got = {(g["platform"], g["event_type"]): (g["events"], g["revenue"], g["players"]) for g in summary["groups"]}
    assert got.keys() == groups.keys()
    for key, (events, revenue, players) in groups.items():
        assert got[key][0] == events, key
        assert got[key][1] == pytest.approx(revenue, abs=0.01), key
        assert got[key][2] == pytest.approx(players, rel=0.02), key  # an HLL sketch's estimate
    revenues = [g["revenue"] for g in summary["groups"]]
    assert revenues == sorted(revenues, reverse=True)
    assert summary["seconds"] > 0
    assert f"scanned {totals['rows']:,} events" in done.stdout
    assert CacheCounters.scrape(cache.webhdfs_url).s3_bytes_read > 0  # the bytes came through the cache


def test_a_non_webhdfs_input_is_refused_before_a_spark_session_starts(tmp_path):
    done = _spark_submit("--input", f"file://{tmp_path}/events", timeout=120)

    assert done.returncode != 0
    # spark-submit passes the Python driver's stderr on to its own stdout.
    assert "--input must be a webhdfs:// URI" in done.stdout + done.stderr
