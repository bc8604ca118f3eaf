"""The cluster's ring, computed: how evenly rendezvous hashing spreads blocks over 3 to 64 workers, and how many
blocks change owner when one worker joins or leaves (the least any scheme can move is 1/N of them)."""

from __future__ import annotations

from typing import Any

from bench.report import markdown_table
from bench.section import Section
from cache_service.cluster.ring import BlockId, Ring, block_loads, moved_fraction

WORKER_COUNTS = (3, 4, 8, 16, 32, 64)


def blocks_for(count: int) -> list[BlockId]:
    """``count`` blocks of a day-partitioned table's files, four 64 MiB blocks per file."""
    return [
        BlockId("lake", f"warehouse/events/dt=2026-12-{1 + (i // 4) % 28:02d}/part-{i // 4:06d}.parquet", i % 4)
        for i in range(count)
    ]


def workers(n: int) -> list[str]:
    """``n`` worker ids as workers make them (``w-`` and 12 hex digits)."""
    return [f"w-{(0x9E3779B97F4A7C15 * (i + 1)) % (1 << 48):012x}" for i in range(n)]


def measure(n: int, per_worker: int) -> dict[str, Any]:
    """Balance and movement on ``n`` workers holding ``per_worker`` blocks each on average."""
    blocks = blocks_for(n * per_worker)
    ids = workers(n + 1)
    ring, grown, shrunk = Ring.of(ids[:n]), Ring.of(ids), Ring.of(ids[: n - 1])
    loads = block_loads(ring, blocks)
    joined, left = moved_fraction(ring, grown, blocks), moved_fraction(ring, shrunk, blocks)
    return {
        "workers": n,
        "blocks": len(blocks),
        "max_over_mean": max(loads.values()) / (len(blocks) / n),
        "min_over_mean": min(loads.values()) / (len(blocks) / n),
        "moved_on_join": joined,
        "ideal_on_join": 1 / (n + 1),
        "moved_on_leave": left,
        "ideal_on_leave": 1 / n,
    }


def run(full: bool) -> Section:
    """Compute every worker count's balance and movement, and draw them."""
    per_worker = 4000 if full else 1500
    rows = [measure(n, per_worker) for n in WORKER_COUNTS]
    worst_balance = max(r["max_over_mean"] for r in rows)
    worst_movement = max(abs(r[f"moved_on_{e}"] / r[f"ideal_on_{e}"] - 1) for r in rows for e in ("join", "leave"))
    table = markdown_table(
        [
            "workers",
            "blocks",
            "max / mean load",
            "min / mean load",
            "moved on a join",
            "ideal",
            "moved on a leave",
            "ideal",
        ],
        [
            [
                str(r["workers"]),
                f"{r['blocks']:,}",
                f"{r['max_over_mean']:.3f}",
                f"{r['min_over_mean']:.3f}",
                f"{r['moved_on_join']:.4f}",
                f"{r['ideal_on_join']:.4f}",
                f"{r['moved_on_leave']:.4f}",
                f"{r['ideal_on_leave']:.4f}",
            ]
            for r in rows
        ],
        "rrrrrrrr",
    )
    text = (
        "The ring of `cache_service/cluster/ring.py` (rendezvous hashing over XXH3), computed, not run: for each "
        f"cluster size, {per_worker:,} blocks per worker on average (a block is 64 MiB of one file), the load of the "
        "busiest and idlest worker against the mean, and the fraction of blocks that change owner when one worker "
        "joins (N to N+1) or leaves (N to N-1), against the ideal 1/(N+1) and 1/N. The spread of loads is the "
        "sampling noise of hashing a finite number of blocks: it shrinks as blocks per worker grow.\n\n"
        + table
        + f"\nWorst max/mean load: {worst_balance:.3f}. Worst distance of a move from its ideal: "
        f"{100 * worst_movement:.1f}%.\n"
    )
    return Section(
        name="ring",
        title="Cluster ring: balance and movement",
        command="python -m bench.run --only ring",
        markdown=text,
        results={"rows": rows, "blocks_per_worker": per_worker},
        targets={"ring_max_over_mean_load": round(worst_balance, 3), "ring_moved_vs_ideal": round(worst_movement, 3)},
    )
