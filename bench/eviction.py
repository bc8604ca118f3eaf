"""Eviction policies on synthetic traces: hit ratios of LRU and S3-FIFO against Belady's MIN."""

from __future__ import annotations

from bench.section import Section
from cache_service.eviction.simulate import render_markdown, run_simulation


def run(full: bool) -> Section:
    """Replay every standard trace through each policy at several cache sizes."""
    requests = 1_000_000 if full else 200_000
    rows = run_simulation(requests=requests, objects=10_000, sizes=(0.01, 0.05, 0.1), seed=1)
    scan_rows = [r for r in rows if "scans" in r["trace"]]
    s3fifo_wins = sum(r["s3fifo"] > r["lru"] for r in scan_rows)
    command = f"python -m cache_service.eviction.simulate --requests {requests} --objects 10000 --sizes 0.01,0.05,0.1"
    text = (
        "Hit ratios (higher is better) of the two policies the page store offers, and of Belady's MIN, the offline "
        "optimum that knows the future. Traces: Zipf popularity with alpha 0.8, 1.0 and 1.2; the same mixed with "
        "one-off scans (25% of requests read keys never seen again); and a daily-ETL pattern where each day's "
        "partitions are hot for a day and then go cold. Cache sizes are fractions of each trace's distinct pages.\n\n"
        + render_markdown(rows)
        + f"\nS3-FIFO beats LRU on {s3fifo_wins} of {len(scan_rows)} scan-mixed rows.\n"
    )
    return Section(
        name="eviction",
        title="Eviction policies on traces",
        command=command,
        markdown=text,
        results={"rows": rows},
        targets={"eviction_s3fifo_beats_lru_on_scans": s3fifo_wins == len(scan_rows)},
    )
