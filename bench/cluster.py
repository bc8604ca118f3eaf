"""The ``cluster`` section: a cache cluster on this machine, measured three ways.

- ``bench/cluster_scan.py``: the Spark scan of ``spark_scan`` through a three-worker cluster as an HA nameservice,
  cold, warm, and warm with the worker Spark talks to SIGKILLed halfway; each worker's share of the bytes served;
- ``bench/cluster_moves.py``: what re-reading a warm data set reads from S3 after a worker joins and after one is
  drained, against what it would read without hand-off;
- ``bench/cluster_reads.py``: warm 64 KiB requests/s from two workers, one pinned to each core, against nginx with a
  worker per core.

One S3 emulator and one S3 latency model serve all three; each part starts and stops its own clusters.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import cluster_moves, cluster_reads, cluster_scan, plots
from bench.cluster_moves import MoveRun, MovesPlan
from bench.cluster_scan import ClusterScanRun, ClusterScans, ScanPlan
from bench.measured import fresh_work_dir, measured_section
from bench.report import IMG_DIR, markdown_table
from bench.section import Section
from infra.s3_emulator import S3Emulator
from infra.s3_model import S3Model

BUCKETS = sorted({cluster_scan.BUCKET, cluster_moves.BUCKET, cluster_reads.BUCKET})
WORKER_NAMES = ("A (killed)", "B", "C")


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Measure the three parts; returns the section."""
    work = fresh_work_dir("cluster", work_dir)
    with S3Emulator(work / "s3", buckets=BUCKETS) as s3, S3Model(s3.endpoint_url, work) as model:
        scan_plan, table, scan_runs, scans = cluster_scan.measure(smoke, full, work / "scan", s3, model.url)
        moves_plan, moves = cluster_moves.measure(full, smoke, work / "moves", s3, model.url)
        reads = cluster_reads.measure(full, smoke, work / "reads", s3)
        model_figures = {"latency_ms": model.latency_ms, "bandwidth_mb_per_s": model.bandwidth_mbps}
    scan = _scan_results(scan_plan, table, scan_runs, scans)
    results: dict[str, Any] = {
        "s3_model": model_figures,
        "scan": scan,
        "moves": {"plan": asdict(moves_plan), "runs": [asdict(m) for m in moves]},
        "reads": reads,
    }
    return _section(results, scan_plan, moves_plan, moves, full=full, img_dir=img_dir)


def _scan_results(
    plan: ScanPlan, table: dict[str, int], runs: list[ClusterScanRun], scans: ClusterScans
) -> dict[str, Any]:
    """Seconds by mode, each worker's share of the bytes served (the killed worker first), the kill's penalty."""
    seconds = {mode: [r.scan_seconds for r in runs if r.mode == mode] for mode in cluster_scan.MODES}
    shares: dict[str, list[list[float]]] = {mode: [] for mode in cluster_scan.MODES}
    s3_read: dict[str, list[float]] = {mode: [] for mode in cluster_scan.MODES}
    kill_points, penalties = [], []
    for run in runs:
        kill = scans.kills.get(run.repetition) if run.mode == "killed" else None
        served = cluster_scan.served_by_worker(run, kill)
        victim = scans.victims[run.repetition].webhdfs_url
        order = [victim, *(u for u in scans.worker_urls[run.repetition] if u != victim)]
        total = sum(served.values())
        shares[run.mode].append([served.get(u, 0.0) / total if total else 0.0 for u in order])
        s3_read[run.mode].append(cluster_scan.s3_bytes(run, kill))
        if run.mode == "killed":
            warm = next(r for r in runs if r.repetition == run.repetition and r.mode == "warm")
            penalties.append(run.scan_seconds / warm.scan_seconds)
            if kill is None:
                raise RuntimeError(f"repetition {run.repetition}: no worker was killed")
            kill_points.append((kill.at - run.started_at) / (run.ended_at - run.started_at))
    return {
        "plan": asdict(plan),
        "table": table,
        "master": cluster_scan.MASTER,
        "seconds": seconds,
        "served_shares": shares,
        "s3_bytes_read": s3_read,
        "killed_over_warm": penalties,
        "kill_point": kill_points,
        "same_answer": True,  # measure() raises otherwise
        "result": runs[0].result,
        "runs": [asdict(r) for r in runs],
    }


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _range(values: Sequence[float], fmt: str) -> str:
    return f"{fmt.format(min(values))} to {fmt.format(max(values))}"


def _section(
    results: dict[str, Any],
    scan_plan: ScanPlan,
    moves_plan: MovesPlan,
    moves: list[MoveRun],
    *,
    full: bool,
    img_dir: Path,
) -> Section:
    scan, reads, model = results["scan"], results["reads"], results["s3_model"]
    table = scan["table"]
    fractions = {
        event: [m.s3_bytes / moves_plan.total_bytes for m in moves if m.event == event] for event in ("join", "drain")
    }
    without = {
        event: [m.moved_bytes / moves_plan.total_bytes for m in moves if m.event == event]
        for event in ("join", "drain")
    }
    results["moves"]["s3_fraction"] = fractions
    results["moves"]["without_handoff_fraction"] = without
    ratio = _median(reads["ratio_per_run"])
    image = plots.cluster(results, img_dir / "cluster.png")

    scan_rows = []
    for mode in cluster_scan.MODES:
        shares = scan["served_shares"][mode]
        scan_rows.append(
            [
                mode,
                f"{_median(scan['seconds'][mode]):.1f}",
                _range(scan["seconds"][mode], "{:.1f}"),
                f"{_median(scan['s3_bytes_read'][mode]) / 2**20:,.1f}",
                " / ".join(f"{_median([s[i] for s in shares]):.0%}" for i in range(len(WORKER_NAMES))),
            ]
        )
    penalty = _median(scan["killed_over_warm"])
    killed_s3 = _median(scan["s3_bytes_read"]["killed"]) / table["bytes"]
    scan_text = (
        "### Spark scan through three workers\n\n"
        f"The job of *Spark scan* above (`spark_jobs/scan_events.py`) over {table['rows']:,} game events in "
        f"{table['files']} Snappy Parquet files ({table['bytes'] / 2**20:,.0f} MiB), read by Spark "
        f"`{cluster_scan.MASTER}` (a failed task is retried, as on any real cluster) from `webhdfs://lakecacheN/...`: "
        "the HA nameservice of a new three-worker cluster (its own Redis, empty workers reading S3 through the "
        f"latency model, {model['latency_ms']:g} ms and {model['bandwidth_mb_per_s']:g} MB/s per connection), "
        "configured from `ha_settings` of `GET /admin/v1/cluster` as `cachectl cluster spark-conf --json` prints "
        "it, in one `spark-submit` application after a discarded warm-up scan. Status and listings go to the "
        "nameservice's first worker, each OPEN is redirected to its block's owner. Per repetition, on a new "
        "cluster: **cold**, **warm**, and **killed**: the warm scan again, with the worker Spark's client talks to "
        "(the nameservice's first, worker A, which also owns blocks: its share of the bytes is in the table) "
        f"SIGKILLed half the warm scan's time after it started. {scan_plan.repetitions} repetitions; medians and "
        "ranges over them. "
        "*Share of bytes served* is each worker's `lakecache_bytes_served_total` during the scan over the three's "
        "sum (A's until just before it was killed).\n\n"
        + markdown_table(
            ["scan", "median s", "range s", "MiB read from S3", "share of bytes served, A / B / C"], scan_rows, "lrrrr"
        )
        + f"\nEvery killed scan completed with the warm scan's answer ({table['rows']:,} rows, the same aggregates "
        f"to the cent, and the same distinct-player sketch). Losing a worker mid-scan cost **{penalty:.2f}x** the "
        f"warm scan's time (median; per repetition {', '.join(f'{p:.2f}' for p in scan['killed_over_warm'])}); "
        f"the kill came at {', '.join(f'{k:.0%}' for k in scan['kill_point'])} of the killed scan's time. The "
        f"two survivors read {killed_s3:.0%} of the table from S3 in that scan: the killed worker's blocks, "
        "which their new owners did not hold (a crash hands nothing over).\n"
    )

    move_rows = [
        [
            event,
            f"{_median(fractions[event]):.2%}",
            _range(fractions[event], "{:.2%}"),
            f"{_median(without[event]):.1%}",
            f"{_median([m.seconds for m in moves if m.event == event]):.1f}",
        ]
        for event in ("join", "drain")
    ]
    drain_messages = [m.message for m in moves if m.event == "drain"]
    moves_text = (
        "### Re-reading a warm data set after a join and after a drain\n\n"
        f"{moves_plan.objects} objects of {moves_plan.object_bytes / 2**20:g} MiB "
        f"({moves_plan.total_bytes / 2**20:,.0f} MiB) of random bytes, warmed by one load job on a new three-worker "
        "cluster (blocks of the default 64 MiB: one per object). **join**: a fourth worker with the same config "
        "and token starts, and once every worker sees it active, every object is read whole through its S3 API "
        "(bytes checked). **drain**: then `POST /admin/v1/cluster/drain` of one of the first three (asked of "
        "another) until its job succeeds and the others see three active workers, and every object is read again "
        "through a staying worker. *Read from S3* is what every worker read from S3 during the re-read, over the "
        "data set. *Without hand-off* is computed, not measured: the share of the data set in blocks whose owner "
        "changed (the cluster's own `GETFILEBLOCKLOCATIONS` before and after), each of which a new owner would have "
        f"read from S3 had nothing been handed over; the ring's ideal is 1/4 for both. {moves_plan.repetitions} "
        "repetitions, each on a new cluster. *s*: for a join, from starting the worker until every worker sees it "
        "active; for a drain, the drain job's own duration.\n\n"
        + markdown_table(
            ["re-read after", "read from S3 (median)", "range", "without hand-off", "s"], move_rows, "lrrrr"
        )
        + (f'\nA drain job\'s last message: "{drain_messages[0]}".\n' if drain_messages and drain_messages[0] else "")
    )

    rps = reads["requests_per_second"]
    plan = reads["plan"]
    size = plan["file_bytes"] / 2**30
    size_text = f"{size:g} GiB" if size >= 1 else f"{plan['file_bytes'] / 2**20:g} MiB"
    reads_text = (
        "### Two workers, one per core, against nginx\n\n"
        f"Warm random 64 KiB reads of one {size_text} file of random bytes from a two-worker cluster (blocks of "
        f"{plan['block_size'].replace('MiB', ' MiB')}: the workers own {reads['blocks_owned'][0]} and "
        f"{reads['blocks_owned'][1]}), each worker pinned to a core of its own with `taskset -a -p -c` (worker A on "
        "core 0, B on core 1), against "
        f"{reads['nginx']} (Debian's package) with `worker_processes auto` (2 here), logging off, serving the same "
        "file from the page cache with the settings that served 64 KiB ranges fastest in trials here, as in *Warm "
        "HTTP reads*: `sendfile off; tcp_nopush off` (with the package's `on`, corked responses sometimes wait for a "
        "delayed ACK). The file was loaded by one load job "
        "and each block read twice from its owner (every page in the owner's memory tier). Clients ask the worker "
        "that owns the bytes, as Spark does after a redirect: two wrk processes (1 thread, "
        f"{cluster_reads.CONNECTIONS // 2} connections each), one asking worker A for random 64 KiB ranges of the "
        "blocks A owns (WebHDFS `OPEN`, `offset` and `length`), the other asking B for B's; nginx gets the same two "
        f"clients asking the same ranges (`Range:`). {plan['runs']} runs of {plan['seconds']} s, the servers "
        "alternating who goes first; a run's requests/s is its two clients' sum. wrk, nginx and everything else "
        "are not pinned: the clients share the 2 cores with the servers, as in *Warm HTTP reads*.\n\n"
        + markdown_table(
            ["server", "median requests/s", "range"],
            [[name, f"{_median(values):,.0f}", _range(values, "{:,.0f}")] for name, values in rps.items()],
            "lrr",
        )
        + f"\nTwo workers over nginx: **{ratio:.2f}x** (median of per-run ratios: "
        f"{', '.join(f'{r:.2f}' for r in reads['ratio_per_run'])}). While measuring, the workers read "
        f"{reads['s3_bytes_read_while_measuring']:,.0f} bytes from S3 and served "
        f"{reads['memory_tier_share']:.1%} of their bytes from memory.\n"
    )
    text = (
        "A cache cluster on this one machine of 2 cores: every worker, Redis, the S3 emulator and model, and the "
        "clients share them, so these figures say what the cluster does (where bytes go, what a crash, a join or a "
        "drain costs), not how it scales across machines.\n\n"
        + scan_text
        + "\n"
        + moves_text
        + "\n"
        + reads_text
        + f"\n![{image[0]}]({image[1]})\n"
    )
    return measured_section(
        "cluster",
        "Cluster: Spark through three workers, scaling warm, two workers against nginx",
        full=full,
        markdown=text,
        results=results,
        targets={
            "cluster_reread_after_drain_s3_fraction": round(_median(fractions["drain"]), 4),
            "cluster_reread_after_join_s3_fraction": round(_median(fractions["join"]), 4),
            "cluster_two_workers_64k_rps_vs_nginx": round(ratio, 3),
        },
    )
