"""Synthetic page-request traces for the eviction simulator.

Each trace is a list of integer page keys, every page the same size. Generators are deterministic for a given seed
(stdlib ``random`` only, so results do not depend on a numpy version).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from itertools import accumulate


def zipf(requests: int, objects: int, seed: int, *, alpha: float) -> list[int]:
    """``requests`` draws over ``objects`` keys where the key of popularity rank ``r`` has weight ``1 / r**alpha``.

    Ranks are shuffled onto keys so that popularity does not follow key order.
    """
    rng = random.Random(f"zipf:{seed}:{alpha}")
    return _zipf_draws(rng, requests, objects, alpha)


def zipf_with_scans(
    requests: int, objects: int, seed: int, *, alpha: float, scan_share: float = 0.25, scan_length: int = 0
) -> list[int]:
    """A Zipf trace where ``scan_share`` of the requests are sequential scans over keys that are never read again.

    This is an ad-hoc query or a backfill reading old partitions once while the daily jobs keep reading their hot
    set. Scans are ``scan_length`` pages long (default: a tenth of ``objects``) and start at random points of the
    Zipf stream; scan keys are numbered from ``objects`` up, so they never collide with the Zipf keys.
    """
    if not 0 <= scan_share < 1:
        raise ValueError(f"scan_share must be in [0, 1), got {scan_share}")
    rng = random.Random(f"scans:{seed}:{alpha}:{scan_share}")
    length = scan_length or max(1, objects // 10)
    scans = int(requests * scan_share) // length
    popular = _zipf_draws(rng, requests - scans * length, objects, alpha)
    starts = sorted(rng.randrange(len(popular) + 1) for _ in range(scans))
    trace: list[int] = []
    next_scan_key = objects
    taken = 0
    for start in starts:
        trace.extend(popular[taken:start])
        taken = start
        trace.extend(range(next_scan_key, next_scan_key + length))
        next_scan_key += length
    trace.extend(popular[taken:])
    return trace


def daily_etl(requests: int, objects: int, seed: int, *, days: int = 10, dimension_share: float = 0.02) -> list[int]:
    """Daily ETL: each day writes new partitions that are read heavily that day, a little the next, then go cold.

    A small set of dimension tables (``dimension_share`` of ``objects``) is joined by every job and stays hot all
    along; a trickle of requests goes to random older partitions (late corrections, ad-hoc lookups). Pages of a day
    are read in runs, the way a Spark task reads the consecutive pages of one file.
    """
    rng = random.Random(f"etl:{seed}:{days}")
    dimensions = max(1, int(objects * dimension_share))
    per_day = max(1, (objects - dimensions) // days)
    per_request_day = requests // days
    trace: list[int] = []

    def partition_run(day: int) -> list[int]:
        # A file of a few pages read start to end: partition pages of one day are contiguous keys.
        first = dimensions + day * per_day
        run = min(per_day, rng.randint(1, 8))
        start = rng.randrange(per_day - run + 1)
        return list(range(first + start, first + start + run))

    for day in range(days):
        budget = per_request_day if day < days - 1 else requests - len(trace)
        day_trace: list[int] = []
        while len(day_trace) < budget:
            roll = rng.random()
            if roll < 0.30:
                day_trace.append(rng.randrange(dimensions))
            elif roll < 0.85 or day == 0:
                day_trace.extend(partition_run(day))
            elif roll < 0.95:
                day_trace.extend(partition_run(day - 1))
            else:
                day_trace.extend(partition_run(rng.randrange(day)))
        trace.extend(day_trace[:budget])
    return trace


TraceGenerator = Callable[[int, int, int], list[int]]

# name -> generator(requests, objects, seed); the simulator's trace set, in table order.
STANDARD_TRACES: dict[str, TraceGenerator] = {
    **{f"zipf-{alpha}": partial(zipf, alpha=alpha) for alpha in (0.8, 1.0, 1.2)},
    **{f"zipf-{alpha}+scans": partial(zipf_with_scans, alpha=alpha) for alpha in (0.8, 1.0, 1.2)},
    "daily-etl": daily_etl,
}


def standard_traces(requests: int, objects: int, seed: int) -> dict[str, list[int]]:
    """Every trace of ``STANDARD_TRACES``, by name: Zipf at three skews, the same with one-off scans, daily ETL."""
    return {name: generate(requests, objects, seed) for name, generate in STANDARD_TRACES.items()}


def _zipf_draws(rng: random.Random, count: int, objects: int, alpha: float) -> list[int]:
    if objects <= 0:
        raise ValueError(f"objects must be positive, got {objects}")
    keys = list(range(objects))
    rng.shuffle(keys)
    cumulative = list(accumulate(1.0 / rank**alpha for rank in range(1, objects + 1)))
    return rng.choices(keys, cum_weights=cumulative, k=count)
