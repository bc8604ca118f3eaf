"""What each task of a DAG run cost the cache: the run's counter samples split among the tasks' time windows.

``airflow dags test`` runs the tasks one after the other, and the worker's counters are its totals: nothing in them
says which task a read was for. So the demo samples the counters every half second while a run goes on
(``infra.cache_metrics.CounterSampler``), and ``split_by_task`` gives each task the part of every interval between
two samples that its window (its start and end in Airflow's ``task_instance`` table) overlaps, as if the counters
grew evenly within the interval. What falls outside every window (Airflow starting, parsing the DAG, its bookkeeping
between tasks) is kept apart under ``OUTSIDE_TASKS``.

Every interval's delta is handed out whole, so the tasks' figures and ``OUTSIDE_TASKS`` add up to the run's total.
What is approximate is the boundary: a task shorter than the sampling interval may take a little of its neighbour's
traffic or leave some of its own to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from infra.cache_metrics import CacheCounters, CounterSample

OUTSIDE_TASKS = "(outside tasks)"
"""The key under which ``split_by_task`` keeps what no task's window covers."""


def split_by_task(
    samples: Sequence[CounterSample], windows: Mapping[str, tuple[float, float]]
) -> dict[str, CacheCounters]:
    """Each task's share of the counters' growth over ``samples`` (oldest first), plus ``OUTSIDE_TASKS``.

    ``windows`` maps a task to its start and end, on the samples' clock (seconds since the epoch). Windows should
    not overlap (``airflow dags test`` runs one task at a time); if some do, an interval they share is split among
    them in proportion to their overlaps, never counted twice.
    """
    costs = {task: CacheCounters() for task in windows}
    outside = CacheCounters()
    for before, after in itertools.pairwise(samples):
        delta = after.counters - before.counters
        span = after.at - before.at
        if span <= 0:
            outside += delta
            continue
        shares = {
            task: overlap / span
            for task, (start, end) in windows.items()
            if (overlap := min(after.at, end) - max(before.at, start)) > 0
        }
        covered = sum(shares.values())
        if covered > 1.0:
            shares = {task: share / covered for task, share in shares.items()}
            covered = 1.0
        for task, share in shares.items():
            costs[task] += delta.scaled(share)
        if covered < 1.0:
            outside += delta.scaled(1.0 - covered)
    costs[OUTSIDE_TASKS] = outside
    return costs
