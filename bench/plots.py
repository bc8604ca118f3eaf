"""The figures of ``docs/benchmarks.md`` as PNGs (matplotlib), drawn from a section's results, never typed in.

Every function writes one PNG and returns ``(alt text, link)``, the link relative to ``docs/`` (``img/<name>``).
Bars are medians over runs; the dots on them are the runs themselves, so the spread is visible.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

# Files only: no display on a build machine. Chosen before pyplot is imported.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = {"cache": "#1f77b4", "nginx": "#7f7f7f", "S3 model": "#d62728", "in memory": "#2ca02c"}
SPARK_COLORS = {"pass-through": "#7f7f7f", "cold": "#ff7f0e", "warm": "#1f77b4"}
WARMUP_COLORS = {
    "boto3, one after another": "#7f7f7f",
    "boto3, all at once": "#bcbd22",
    "cache, 1 worker": "#1f77b4",
    "cache, 3 workers": "#17becf",
}


def _bars(axes: Axes, series: Mapping[str, Sequence[float]], colors: Mapping[str, str], unit: str) -> None:
    """One bar per series at its median, with each run as a dot and the median written above."""
    for position, (name, values) in enumerate(series.items()):
        middle = statistics.median(values)
        axes.bar(position, middle, color=colors.get(name, "#1f77b4"), width=0.6)
        axes.scatter([position] * len(values), values, color="black", s=10, zorder=3)
        axes.annotate(
            f"{middle:.3g}", (position, middle), ha="center", va="bottom", xytext=(0, 3), textcoords="offset points"
        )
    axes.set_xticks(range(len(series)), list(series))
    axes.set_ylabel(unit)


def _save(figure: Any, path: Path, title: str) -> tuple[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return title, f"img/{path.name}"


class Panel(NamedTuple):
    """One panel of bars (``_bars``): its series, their colours, the unit of its axis, and its heading."""

    series: Mapping[str, Sequence[float]]
    colors: Mapping[str, str]
    unit: str
    heading: str


def _bar_panels(path: Path, title: str, width: float, panels: Sequence[Panel]) -> tuple[str, str]:
    """``panels`` side by side in a figure ``width`` inches wide, saved to ``path`` with alt text ``title``."""
    figure, grid = plt.subplots(1, len(panels), figsize=(width, 3.6), squeeze=False)
    for axes, panel in zip(grid[0], panels, strict=True):
        _bars(axes, panel.series, panel.colors, panel.unit)
        axes.set_title(panel.heading)
    return _save(figure, path, title)


def range_reads(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """Warm 64 KiB reads: median and p99 latency on one connection, requests/s at 32 connections."""
    latency = results["latency_ms"]
    panels = [
        Panel(latency["p50"], COLORS, "ms", "median latency, 1 connection"),
        Panel(latency["p99"], COLORS, "ms", "p99 latency, 1 connection"),
        Panel(results["requests_per_second"], COLORS, "requests/s", "requests/s, 32 connections"),
    ]
    return _bar_panels(path, "warm 64 KiB range reads, cache and nginx", 11, panels)


def sequential(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """Warm sequential read of one file, GB/s."""
    panel = Panel(results["sequential_gb_per_s"], COLORS, "GB/s", "sequential read, 1 connection")
    return _bar_panels(path, "warm sequential read, cache and nginx", 4.2, [panel])


def parquet_lookups(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """Point lookups: every lookup's time through each path, on a log scale."""
    figure, axes = plt.subplots(figsize=(8.5, 3.8))
    series = results["lookup_ms"]
    names = list(series)
    axes.boxplot([series[n] for n in names], whis=(1, 99), showfliers=False)
    axes.set_xticks(range(1, len(names) + 1), [name.replace(", ", "\n") for name in names])
    axes.set_yscale("log")
    axes.set_ylabel("ms per lookup (log scale)")
    axes.set_title(
        "Parquet point lookup: footer + one row group\n(boxes: quartiles; whiskers: 1st to 99th percentile)",
        fontsize=10,
    )
    return _save(
        figure, path, "Parquet point lookups: S3 model, warm cache over WebHDFS and the S3 API, nginx, in memory"
    )


def spark_scan(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """The Spark scan's time in each mode."""
    panel = Panel(results["scan_seconds"], SPARK_COLORS, "seconds (lower is better)", "Spark scan-and-aggregate")
    return _bar_panels(path, "Spark scan: pass-through, cold cache, warm cache", 5.5, [panel])


def warmup(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """Warming a data set: seconds and MB/s of each setup (boto3's downloads, the cache's load job)."""
    short = {name: name.replace(", ", "\n", 1) for name in results["seconds"]}
    colors = {short[name]: color for name, color in WARMUP_COLORS.items() if name in short}
    panels = [
        Panel({short[k]: v for k, v in results["seconds"].items()}, colors, "seconds (lower is better)", "time"),
        Panel({short[k]: v for k, v in results["mb_per_s"].items()}, colors, "MB/s", "throughput"),
    ]
    return _bar_panels(path, "warming a data set from S3: boto3 download_file and cache load jobs", 11, panels)


def ring(rows: Sequence[Mapping[str, Any]], path: Path) -> tuple[str, str]:
    """Balance (max and min load over the mean) and movement (moved on a join or leave, with the ideal) by size."""
    sizes = [int(r["workers"]) for r in rows]
    figure, (balance, movement) = plt.subplots(1, 2, figsize=(10, 3.6))
    balance.plot(sizes, [r["max_over_mean"] for r in rows], "o-", label="busiest / mean")
    balance.plot(sizes, [r["min_over_mean"] for r in rows], "s-", label="idlest / mean")
    balance.axhline(1.10, color="#d62728", linestyle=":", label="goal 1.10")
    balance.set_title("block load over the mean")
    movement.plot(sizes, [r["moved_on_join"] for r in rows], "o-", label="moved on a join")
    movement.plot(sizes, [r["ideal_on_join"] for r in rows], "k--", label="ideal 1/(N+1)")
    movement.plot(sizes, [r["moved_on_leave"] for r in rows], "s-", label="moved on a leave")
    movement.plot(sizes, [r["ideal_on_leave"] for r in rows], "k:", label="ideal 1/N")
    movement.set_title("fraction of blocks that change owner")
    for axes in (balance, movement):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sizes, [str(s) for s in sizes])
        axes.set_xlabel("workers")
        axes.legend(fontsize=8)
    return _save(figure, path, "cluster ring: load balance and blocks moved, by number of workers")


def eviction(rows: Sequence[Mapping[str, Any]], path: Path) -> tuple[str, str]:
    """Hit ratio against cache size, one panel per trace, LRU and S3-FIFO against Belady's MIN."""
    traces = list(dict.fromkeys(str(r["trace"]) for r in rows))
    columns = 4
    lines = (len(traces) + columns - 1) // columns
    figure, grid = plt.subplots(lines, columns, figsize=(12, 2.8 * lines), squeeze=False, sharey=True)
    for axes, trace in zip(grid.flat, traces, strict=False):
        mine = [r for r in rows if r["trace"] == trace]
        sizes = [float(r["cache_fraction"]) for r in mine]
        for policy, style in (("lru", "o-"), ("s3fifo", "s-"), ("min", "k--")):
            axes.plot(sizes, [float(r[policy]) for r in mine], style, label=policy.upper().replace("S3FIFO", "S3-FIFO"))
        axes.set_title(trace, fontsize=9)
        axes.set_xlabel("cache size (fraction of pages)", fontsize=8)
    for axes in grid.flat[len(traces) :]:
        axes.axis("off")
    grid[0][0].set_ylabel("hit ratio")
    grid[0][0].legend(fontsize=8)
    return _save(figure, path, "eviction hit ratios by trace and cache size")


def _grouped(axes: Axes, groups: Sequence[str], series: Mapping[str, Sequence[float]], unit: str) -> None:
    """Bars in groups: one group per entry of ``groups``, one bar per series in each, labelled with its value."""
    width = 0.8 / max(1, len(series))
    for offset, (name, values) in enumerate(series.items()):
        positions = [g + (offset - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = axes.bar(positions, values, width=width, label=name)
        axes.bar_label(bars, [f"{v:.0%}" for v in values], fontsize=7)
    axes.set_xticks(range(len(groups)), list(groups))
    axes.set_ylabel(unit)
    axes.legend(fontsize=7)


def cluster(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """The cluster section: scan times, each worker's share of bytes served, S3 re-reads after a join or a drain
    (with and without hand-off), and two workers' requests/s against nginx."""
    figure, (times, shares, moves, reads) = plt.subplots(1, 4, figsize=(16, 3.8))
    scan = results["scan"]
    _bars(times, scan["seconds"], SPARK_COLORS | {"killed": "#d62728"}, "seconds (lower is better)")
    times.set_title("Spark scan, 3 workers")
    modes = list(scan["served_shares"])
    workers = ("A (killed)", "B", "C")
    _grouped(
        shares,
        modes,
        {w: [statistics.median(s[i] for s in scan["served_shares"][m]) for m in modes] for i, w in enumerate(workers)},
        "share of bytes served",
    )
    shares.set_title("bytes served by each worker")
    events = list(results["moves"]["s3_fraction"])
    _grouped(
        moves,
        [f"after a {e}" for e in events],
        {
            "read from S3": [statistics.median(results["moves"]["s3_fraction"][e]) for e in events],
            "without hand-off (computed)": [
                statistics.median(results["moves"]["without_handoff_fraction"][e]) for e in events
            ],
        },
        "fraction of the data set",
    )
    moves.set_title("re-reading a warm data set")
    rps = results["reads"]["requests_per_second"]
    _bars(
        reads, {"2 workers": rps["cluster"], "nginx auto": rps["nginx"]}, {"2 workers": COLORS["cache"]}, "requests/s"
    )
    reads.set_title("warm 64 KiB reads, 2 cores")
    return _save(figure, path, "cache cluster: Spark scan, bytes served per worker, re-reads after scaling, requests/s")


ALERT_COLORS = {"first generation": "#d62728", "generated": "#1f77b4"}


def fleet_alerts(results: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """Notifications per hour of the fleet day for each configuration (log scale, pages darker), the incidents
    shaded, and the hosts running under it."""
    start = int(results["start_minute"]) / 60
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    width = 0.4
    for offset, (name, outcome) in enumerate(results["outcomes"].items()):
        hours = [start + h + (offset - 0.5) * width + 0.5 for h in range(len(outcome["per_hour"]))]
        color = ALERT_COLORS.get(name, "#7f7f7f")
        top.bar(hours, outcome["per_hour"], width=width, color=color, alpha=0.45, label=f"{name}: notifications")
        top.bar(hours, outcome["pages_per_hour"], width=width, color=color, label=f"{name}: pages")
    for incident in results["incidents"]:
        top.axvspan(incident["start"] / 60, incident["end"] / 60, color="#ffbb78", alpha=0.35, zorder=0)
        top.annotate(
            incident["kind"].replace("_", " "),
            (incident["start"] / 60, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
        )
    top.set_yscale("symlog", linthresh=1)
    top.set_ylabel("notifications per hour (log)")
    top.legend(loc="upper left", bbox_to_anchor=(0, 0.9), fontsize=8)
    top.set_title("Alertmanager notifications per hour of the fleet day (incidents shaded)")
    running, every = results["hosts_running"], int(results["hosts_running_every"])
    bottom.step([start + i * every / 60 for i in range(len(running))], running, where="post", color="black", lw=1)
    bottom.set_ylabel("hosts running")
    bottom.set_xlabel("hour of the day")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    return _save(figure, path, "notifications per hour, first generation and generated configuration, over a fleet day")


SOAK_EVENTS = {
    "drain": "#d62728",
    "stopped": "#ff7f0e",
    "join": "#2ca02c",
    "warmup": "#17becf",
    "warmed": "#8c564b",
    "purge": "#7f7f7f",
}


def soak(series: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """The soak over time on its workers (``series["label"]``): requests/s (failures in red), p99 per window, and
    each worker's RSS with how much higher it peaked in the second half of its warm part (shaded) than in the first;
    the operator's steps marked (the purges, and the drain, the stop of the drained worker and its join, or the
    warmup and its end)."""
    figure, (load, latency, memory) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    per_second = series["requests_per_second"]
    load.plot(range(len(per_second)), per_second, lw=0.8, color=COLORS["cache"], label="requests/s")
    failed = series["failed_per_second"]
    if any(failed):
        load.bar(range(len(failed)), failed, color="#d62728", label="failed/s")
    load.set_ylabel("requests/s")
    load.set_title(f"soak: {series['label']} under mixed reads and writes")
    latency.plot([t for t, _ in series["p99"]], [p for _, p in series["p99"]], "o-", ms=3, color="#9467bd")
    latency.set_ylabel("p99 latency, ms (5 s windows)")
    at = series["rss_at"]
    for name, values in series["rss_mib"].items():
        growth = series["rss_growth_mib"][name]
        label = f"{name}: {growth:+.1f} MiB" if growth == growth else f"{name}: not judged"  # NaN: not warm long enough
        memory.plot(at, [float("nan") if v is None else v for v in values], lw=1, label=label)
    memory.axvspan(series["warm_from"], at[-1] if at else series["warm_from"], color="#c7e9c0", alpha=0.4, zorder=0)
    memory.set_ylabel("RSS, MiB")
    memory.set_xlabel("seconds into the soak (dashed: purges; shaded: warm, where RSS peaks must not grow)")
    memory.legend(fontsize=8, loc="lower right", title="worker: peak growth once warm", title_fontsize=8)
    for axes in (load, latency, memory):
        for at_second, label in series["events"]:
            axes.axvline(at_second, color=SOAK_EVENTS.get(label, "black"), lw=0.8, ls="--" if label == "purge" else "-")
        axes.grid(alpha=0.3)
    marked = [(at_second, label) for at_second, label in series["events"] if label != "purge"]
    for step, (at_second, label) in enumerate(marked):  # one under the next: a drain and its stop are a second apart
        load.annotate(
            label,
            (at_second, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10 - 11 * (step % 2)),
            textcoords="offset points",
            fontsize=8,
            color=SOAK_EVENTS[label],
        )
    load.legend(fontsize=8, loc="lower left")
    steps = ", ".join(step for step in ("drain", "join", "warmup") if step in {label for _, label in marked})
    whose = "each worker's" if len(series["rss_mib"]) > 1 else "the worker's"
    return _save(
        figure,
        path,
        f"soak, {series['label']}: requests/s, p99 latency and {whose} memory over time, "
        f"{steps + ' and ' if steps else ''}purges marked",
    )
