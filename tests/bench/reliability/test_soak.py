"""The soak (``bench.reliability.soak``), short: three workers under mixed reads and writes through WebHDFS and S3
for 45 seconds, drained, joined and purged on the way, and one worker for 20, purged and warmed; each with 0 failed
requests and no memory growth once warm."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.campaign import FULL, QUICK
from bench.reliability.soak import FIGURES, SoakPlan, plans, run
from bench.reliability.soak_load import DataSet, pattern

SMALL = DataSet(warm=4, cold=12, size=1 << 20)
SHORT = SoakPlan(seconds=45, data=SMALL, purge_every=12, warm_up=20)
ONE_WORKER = SoakPlan(seconds=20, workers=1, data=SMALL, purge_every=6, warm_from=0.4, warm_up=8)
"""Judged warm from 8 s: the 10 samples a worker needs to be judged in a run under half SHORT's length."""


def test_the_data_set_pattern_names_its_object_and_offset_in_every_range() -> None:
    whole = pattern(7, 0, 4096)

    assert pattern(7, 13, 1001) == whole[13:1001]
    assert pattern(7, 4095, 4096) == whole[4095:]
    assert pattern(8, 0, 4096) != whole
    assert whole[8:16] == (7 << 40 | 1).to_bytes(8, "big")


def test_every_budget_soaks_one_worker_and_three_each_with_a_figure_of_its_own() -> None:
    for budget in (QUICK, FULL):
        assert [(p.workers, p.label) for p in plans(budget)] == [(1, "one worker"), (3, "three workers")]
    assert FIGURES[1] != FIGURES[3] and FIGURES[3].name == "soak.png"
    with pytest.raises(ValueError, match="not 2"):
        SoakPlan(seconds=60, workers=2)


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


def test_purges_and_a_warmup_of_one_worker_under_load_fail_no_request_and_memory_does_not_grow(tmp_path: Path) -> None:
    result = run(ONE_WORKER, tmp_path / "work", tmp_path / "soak-one-worker.png")

    assert result.held, result.violations
    assert result.name.startswith("soak, one worker, ")
    counts = result.counts
    assert counts["failed"] == 0 and counts["wrong_reads"] == 0
    assert counts["warmups"] == 1 and counts["purges"] >= 2
    assert counts["drains"] == 0 and counts["joins"] == 0
    assert counts["warm_reads"] > 0 and counts["cold_reads"] > 0
    assert counts["writes"] > 0 and counts["publishes"] > 0
    assert counts["workers_judged_warm"] == 1
    assert counts["rss_growth_kib_max"] <= ONE_WORKER.rss_growth_limit * 1024
    assert (tmp_path / "soak-one-worker.png").stat().st_size > 10_000
