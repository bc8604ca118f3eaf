"""Replay synthetic traces through the eviction policies and compare hit ratios with Belady's MIN.

Run ``python -m cache_service.eviction.simulate --help``. LRU and S3-FIFO are driven through ``make_policy`` and
``evict(can_evict)`` exactly as a page-store tier drives them, so the numbers describe the shipped code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from cache_service.eviction import EvictionPolicy, K, make_policy
from cache_service.eviction.belady import min_hits
from cache_service.eviction.traces import STANDARD_TRACES

PAGE_SIZE = 1 << 20
POLICIES = ("lru", "s3fifo")
DEFAULT_SIZES = (0.01, 0.05, 0.1)


def replay(policy: EvictionPolicy[K], trace: Sequence[K], capacity_pages: int) -> int:
    """Hits when ``trace`` is served by a tier of ``capacity_pages`` one-page slots that evicts with ``policy``.

    Raises ``RuntimeError`` if the policy fails to name a resident victim when the tier is full.
    """
    capacity = capacity_pages * PAGE_SIZE
    resident: set[K] = set()
    used = 0
    hits = 0
    for key in trace:
        if key in resident:
            hits += 1
            policy.on_access(key)
            continue
        while used + PAGE_SIZE > capacity:
            victim = policy.evict(_anything)
            if victim is None or victim not in resident:
                raise RuntimeError(f"{policy.name} returned {victim!r}, which is not resident")
            resident.remove(victim)
            used -= PAGE_SIZE
        policy.on_insert(key, PAGE_SIZE)
        resident.add(key)
        used += PAGE_SIZE
    return hits


def run_simulation(
    requests: int = 200_000,
    objects: int = 10_000,
    sizes: Sequence[float] = DEFAULT_SIZES,
    seed: int = 1,
    workers: int | None = None,
) -> list[dict[str, Any]]:
    """Hit ratios of LRU, S3-FIFO and MIN for every standard trace at every cache size.

    ``sizes`` are fractions of each trace's working set (its number of distinct pages). One row per trace and size,
    with keys ``trace``, ``requests``, ``working_set``, ``cache_fraction``, ``cache_pages``, ``lru``, ``s3fifo`` and
    ``min``. Traces run in parallel on ``workers`` processes (default: one per CPU). Raises ``ValueError`` for a
    size outside (0, 1] or a non-positive ``requests`` or ``objects``.
    """
    if requests <= 0 or objects <= 0:
        raise ValueError("requests and objects must be positive")
    for fraction in sizes:
        if not 0 < fraction <= 1:
            raise ValueError(f"cache sizes are fractions of the working set in (0, 1], got {fraction}")
    jobs = [(name, requests, objects, tuple(sizes), seed) for name in STANDARD_TRACES]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        per_trace = list(pool.map(_simulate_trace, jobs))
    return [row for rows in per_trace for row in rows]


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of ``run_simulation`` as a Markdown table, hit ratios in percent, best real policy in bold."""
    lines = [
        "| trace | cache size | LRU | S3-FIFO | MIN |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        best = max(row[name] for name in POLICIES)
        cells = [f"**{row[name]:.2%}**" if row[name] == best else f"{row[name]:.2%}" for name in POLICIES]
        size = f"{row['cache_fraction']:g} ({row['cache_pages']} pages)"
        lines.append(f"| {row['trace']} | {size} | {' | '.join(cells)} | {row['min']:.2%} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cache_service.eviction.simulate",
        description="Compare eviction policies on synthetic traces (hit ratio, higher is better).",
    )
    parser.add_argument("--requests", type=_positive_int, default=200_000, help="requests per trace")
    parser.add_argument("--objects", type=_positive_int, default=10_000, help="distinct popular pages per trace")
    parser.add_argument(
        "--sizes", type=_fractions, default=DEFAULT_SIZES, help="cache sizes as fractions of the working set"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--out", help="write the table to this file instead of stdout")
    args = parser.parse_args(argv)

    rows = run_simulation(args.requests, args.objects, args.sizes, args.seed)
    text = render_markdown(rows) if args.format == "markdown" else json.dumps(rows, indent=2) + "\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            print(f"simulate: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


def _simulate_trace(job: tuple[str, int, int, tuple[float, ...], int]) -> list[dict[str, Any]]:
    name, requests, objects, sizes, seed = job
    # Each worker rebuilds its trace from the seed rather than receiving a large pickled list.
    trace = STANDARD_TRACES[name](requests, objects, seed)
    working_set = len(set(trace))
    rows: list[dict[str, Any]] = []
    for fraction in sizes:
        pages = max(1, round(working_set * fraction))
        row: dict[str, Any] = {
            "trace": name,
            "requests": len(trace),
            "working_set": working_set,
            "cache_fraction": fraction,
            "cache_pages": pages,
        }
        for policy_name in POLICIES:
            policy: EvictionPolicy[int] = make_policy(policy_name, pages * PAGE_SIZE)
            row[policy_name] = replay(policy, trace, pages) / len(trace)
        row["min"] = min_hits(trace, pages) / len(trace)
        rows.append(row)
    return rows


def _anything(key: Hashable) -> bool:
    return True


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or not all(0 < value <= 1 for value in values):
        raise argparse.ArgumentTypeError(f"sizes must be fractions in (0, 1]: {text!r}")
    return values


if __name__ == "__main__":
    sys.exit(main())
