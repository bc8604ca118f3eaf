"""What each task of a DAG run cost the cache: the run's counter samples split among the tasks' time windows.

``airflow dags test`` runs the tasks one after the other, and the worker's counters are its totals: nothing in them
says which task a read was for. So the demo samples the counters while a run goes on (``infra.demo.runs``: every
half second, and at once when the run's log says a task started or ended), and ``split_by_task`` hands each interval
between two samples to the tasks whose windows (their start and end in Airflow's ``task_instance`` table) overlap it,
in proportion to the overlap, as if the counters grew evenly within the interval. The gaps between two tasks (a few
milliseconds of Airflow's bookkeeping) are given no share: Airflow itself reads nothing through the cache, a task
does. An interval that no window touches (Airflow starting and parsing the DAG, before the first task) goes to
``OUTSIDE_TASKS``.

Every interval's delta is handed out whole, so the tasks' figures and ``OUTSIDE_TASKS`` add up to the run's total.
What is approximate is a boundary between two tasks: the sample taken there comes a few tens of milliseconds after
the change, and what happened in between is shared by time between the two tasks.
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
    not overlap (``airflow dags test`` runs one task at a time); if some do, an interval they share is still split
    among them in proportion to their overlaps, never counted twice.
    """
    costs = {task: CacheCounters() for task in windows}
    outside = CacheCounters()
    for before, after in itertools.pairwise(samples):
        delta = after.counters - before.counters
        overlaps = {
            task: overlap
            for task, (start, end) in windows.items()
            if (overlap := min(after.at, end) - max(before.at, start)) > 0
        }
        covered = sum(overlaps.values())
        if covered <= 0:
            outside += delta
            continue
        for task, overlap in overlaps.items():
            costs[task] += delta.scaled(overlap / covered)
    costs[OUTSIDE_TASKS] = outside
    return costs
