"""The soak (``bench.reliability.soak``) for 45 seconds: three workers under mixed reads and writes through WebHDFS
and S3, drained, joined and purged on the way, with 0 failed requests and no memory growth once warm."""

from __future__ import annotations

from pathlib import Path

from bench.reliability.soak import SoakPlan, run
from bench.reliability.soak_load import DataSet, pattern

SHORT = SoakPlan(seconds=45, data=DataSet(warm=4, cold=12, size=1 << 20), purge_every=12, warm_up=20)


def test_the_data_set_pattern_names_its_object_and_offset_in_every_range() -> None:
    whole = pattern(7, 0, 4096)

    assert pattern(7, 13, 1001) == whole[13:1001]
    assert pattern(7, 4095, 4096) == whole[4095:]
    assert pattern(8, 0, 4096) != whole
    assert whole[8:16] == (7 << 40 | 1).to_bytes(8, "big")


def test_a_drain_a_join_and_purges_under_load_fail_no_request_and_memory_does_not_grow(tmp_path: Path) -> None:
    result = run(SHORT, tmp_path / "work", tmp_path / "soak.png")

    assert result.held, result.violations
    counts = result.counts
    assert counts["failed"] == 0 and counts["wrong_reads"] == 0
    assert counts["drains"] == 1 and counts["joins"] == 1 and counts["purges"] >= 2
    assert counts["warm_reads"] > 100 and counts["cold_reads"] > 10
    assert counts["writes"] > 10 and counts["publishes"] > 0 and counts["writes_read_back"] > 0
    assert counts["workers_judged_warm"] >= 2  # A and B; C, joined back at 18 s, is not warm for 10 s before the end
    assert counts["rss_growth_kib_max"] <= SHORT.rss_growth_limit * 1024
    assert (tmp_path / "soak.png").stat().st_size > 10_000
