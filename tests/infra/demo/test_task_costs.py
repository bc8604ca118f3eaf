"""Per-task attribution: a run's counter growth is split among the tasks by their time windows, and adds up."""

from __future__ import annotations

import pytest

from infra.cache_metrics import CacheCounters, CounterSample
from infra.demo.task_costs import OUTSIDE_TASKS, split_by_task


def sample(at: float, s3: float, hits: float = 0.0, misses: float = 0.0) -> CounterSample:
    return CounterSample(at=at, counters=CacheCounters(s3_bytes_read=s3, page_hits={"disk": hits}, page_misses=misses))


def test_growth_inside_a_window_goes_to_its_task_and_growth_outside_every_window_stays_outside():
    samples = [sample(0.0, 0), sample(1.0, 100, misses=1), sample(2.0, 100, hits=5, misses=1), sample(3.0, 160)]
    windows = {"warm_inputs": (0.0, 1.0), "ingest_events": (1.0, 2.0)}

    costs = split_by_task(samples, windows)

    assert list(costs) == ["warm_inputs", "ingest_events", OUTSIDE_TASKS]
    assert costs["warm_inputs"].s3_bytes_read == 100
    assert costs["warm_inputs"].hit_ratio == 0.0
    assert costs["ingest_events"].s3_bytes_read == 0
    assert costs["ingest_events"].hit_ratio == 1.0
    assert costs[OUTSIDE_TASKS].s3_bytes_read == 60


def test_an_interval_across_a_boundary_is_split_by_overlap_and_the_gap_between_tasks_gets_nothing():
    samples = [sample(10.0, 0), sample(10.5, 1000), sample(11.0, 1000)]
    windows = {"a": (9.0, 10.1), "b": (10.2, 12.0)}  # 0.1 s of the first interval is Airflow between the two

    costs = split_by_task(samples, windows)

    assert costs["a"].s3_bytes_read == pytest.approx(250)  # 0.1 s of the 0.4 s the tasks ran
    assert costs["b"].s3_bytes_read == pytest.approx(750)
    assert costs[OUTSIDE_TASKS].s3_bytes_read == 0
    assert sum(c.s3_bytes_read for c in costs.values()) == pytest.approx(1000)


def test_overlapping_windows_share_an_interval_instead_of_counting_it_twice():
    costs = split_by_task([sample(0.0, 0), sample(1.0, 300)], {"a": (0.0, 1.0), "b": (0.0, 1.0)})

    assert costs["a"].s3_bytes_read == pytest.approx(150)
    assert costs["b"].s3_bytes_read == pytest.approx(150)
    assert costs[OUTSIDE_TASKS].s3_bytes_read == pytest.approx(0)


def test_a_task_that_never_ran_costs_nothing_and_a_single_sample_splits_nothing():
    costs = split_by_task([sample(5.0, 42)], {"a": (0.0, 1.0)})

    assert costs["a"] == CacheCounters()
    assert costs[OUTSIDE_TASKS] == CacheCounters()
