"""What the demo prints: rows per stage, data quality, cold vs warm per task, on a cluster what each worker served,
and one line on what the cache saved."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from infra.cache_metrics import CacheCounters
from infra.demo.runs import DAG_ID, RAW_PREFIX, SAMPLE_INTERVAL, DemoSummary
from infra.demo.task_costs import OUTSIDE_TASKS
from infra.s3_model import S3ModelConfig


def mib(size: float) -> str:
    """``size`` bytes in MiB, one decimal: ``207.6 MiB``."""
    return f"{size / 2**20:,.1f} MiB"


def _bytes(size: int) -> str:
    return f"{mib(size)} ({size:,} B)" if size else "0 B"


def stages_table(summary: DemoSummary) -> Table:
    """Rows per stage, cold and warm side by side (a rerun of the same day must give the same rows), and what the
    metastore sync did to each table in each run."""
    cold, warm = summary.cold.stages, summary.warm.stages
    table = Table(title=f"{DAG_ID} for {summary.day}: rows per stage")
    for heading in ("stage", "table"):
        table.add_column(heading)
    for heading in ("cold run", "warm run"):
        table.add_column(heading, justify="right")
    table.add_column("Glue catalog: cold run / warm run")

    def row(stage: str, name: str, path: str, first: int | None, second: int | None) -> None:
        catalog = " / ".join(run.catalog.get(name, "-") for run in (summary.cold, summary.warm)) if name else ""
        table.add_row(stage, path, *(f"{n:,}" if n is not None else "-" for n in (first, second)), catalog)

    row("raw lines", "", f"/{RAW_PREFIX}/dt={summary.day}", cold.raw_lines, warm.raw_lines)
    row("  clean events", "events_clean", "/warehouse/events_clean", cold.clean, warm.clean)
    row("  duplicates dropped", "", "", cold.duplicates, warm.duplicates)
    row("  quarantined", "events_quarantine", "/warehouse/events_quarantine", cold.quarantined, warm.quarantined)
    for reason in sorted(set(cold.quarantined_by_reason) | set(warm.quarantined_by_reason)):
        row(f"    {reason}", "", "", cold.quarantined_by_reason.get(reason), warm.quarantined_by_reason.get(reason))
    catalogued = set(summary.cold.catalog) | set(summary.warm.catalog)
    for name in sorted(
        (set(cold.aggregates) | set(warm.aggregates) | catalogued) - {"events_clean", "events_quarantine"}
    ):
        path = f"/warehouse/agg/{name}"
        row(f"aggregate {name}", name, path, cold.aggregates.get(name), warm.aggregates.get(name))
    table.caption = "raw lines = clean + duplicates + quarantined: " + ", ".join(
        f"{run.name} {'yes' if run.stages.reconciles else 'NO'}" for run in (summary.cold, summary.warm)
    )
    return table


def quality_table(summary: DemoSummary) -> Table:
    """The Great Expectations suites of both runs: outcome, expectations met, where the result JSON is."""
    table = Table(title="data quality (Great Expectations)")
    for heading in ("run", "table", "suite", "result", "expectations met", "result JSON"):
        table.add_column(heading, justify="right" if heading == "expectations met" else "left")
    for run in (summary.cold, summary.warm):
        for result in run.quality:
            table.add_row(
                run.name,
                result.table,
                result.suite,
                "passed" if result.success else "FAILED",
                f"{result.evaluated - result.failed} of {result.evaluated}",
                result.path.name,
            )
    folders = {run.name: run.quality[0].path.parent for run in (summary.cold, summary.warm) if run.quality}
    table.caption = "result JSON files in " + "; ".join(f"{relative_path(d)}/ ({name})" for name, d in folders.items())
    return table


def comparison_table(summary: DemoSummary) -> Table:
    """The cold and warm runs side by side: time, S3 traffic, what each tier served, hit ratio."""
    cold, warm = summary.cold, summary.warm
    table = Table(
        title=f"cold vs warm, whole runs: {summary.raw.lines:,} raw events ({mib(summary.raw.bytes)} of JSON lines)",
        caption=s3_model_text(summary.s3_model),
    )
    table.add_column("")
    table.add_column("cold run", justify="right")
    table.add_column("warm run", justify="right")
    table.add_row("run time (airflow dags test)", f"{cold.wall_seconds:.1f} s", f"{warm.wall_seconds:.1f} s")
    table.add_row("bytes read from S3", _bytes(cold.s3_bytes_read), _bytes(warm.s3_bytes_read))
    table.add_row(
        "  of which warmup",
        _bytes(int(cold.warmup.get("bytes_from_s3", 0))),
        _bytes(int(warm.warmup.get("bytes_from_s3", 0))),
    )
    table.add_row("bytes written through to S3", _bytes(cold.s3_bytes_written), _bytes(warm.s3_bytes_written))
    for tier, source in (("memory", "memory tier"), ("disk", "disk tier"), ("s3", "S3 (page misses)")):
        table.add_row(f"served from {source}", mib(cold.served(tier)), mib(warm.served(tier)))
    table.add_row(
        "page hit ratio",
        f"{cold.hit_ratio:.1%} ({cold.page_hits:,} hits, {cold.page_misses:,} misses)",
        f"{warm.hit_ratio:.1%} ({warm.page_hits:,} hits, {warm.page_misses:,} misses)",
    )
    return table


def relative_path(path: Path) -> str:
    """``path`` relative to the working directory if it lies below it (shorter to read), else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def s3_model_text(model: S3ModelConfig | None) -> str:
    """What stood for S3 behind the cache, in a few words."""
    if model is None:
        return "S3: the emulator on loopback, with no latency model (microseconds per request)"
    bandwidth = f"{model.bandwidth_mbps:g} MB/s per connection" if model.bandwidth else "no bandwidth cap"
    return f"S3: the emulator behind the S3 latency model, {model.latency_ms:g} ms to first byte, {bandwidth}"


def _ratio_cell(counters: CacheCounters) -> str:
    # Less than one page read is a neighbour's share at a task boundary (see task_costs), not a ratio worth showing.
    return f"{counters.hit_ratio:.1%}" if counters.page_reads >= 1 else "-"


def _task_cells(counters: CacheCounters, seconds: float) -> tuple[str, str, str]:
    return f"{seconds:.1f} s", mib(max(0.0, counters.s3_bytes_read)), _ratio_cell(counters)


def tasks_table(summary: DemoSummary) -> Table:
    """Per task, cold and warm side by side: how long it ran, the bytes the cache read from S3 for it, and the page
    hit ratio of its reads; then what fell between tasks, and the whole run.

    The per-task cache figures are the run's counters split by the tasks' time windows (``infra.demo.task_costs``).
    """
    cold, warm = summary.cold, summary.warm
    table = Table(title=f"{DAG_ID}, task by task: time, bytes the cache read from S3, page hit ratio")
    table.add_column("task")
    for run in ("cold", "warm"):
        for heading in ("time", "S3 read", "hit ratio"):
            table.add_column(f"{run} {heading}", justify="right")
    tasks = [t for t in cold.tasks if t != OUTSIDE_TASKS]
    tasks += [t for t in warm.tasks if t not in tasks and t != OUTSIDE_TASKS]
    for task in (*tasks, OUTSIDE_TASKS):
        label = "Airflow itself (start-up, parsing, between tasks)" if task == OUTSIDE_TASKS else task
        cells = [
            cell
            for run in (cold, warm)
            for cell in _task_cells(run.tasks.get(task, CacheCounters()), run.task_seconds(task))
        ]
        table.add_row(label, *cells)
    table.add_section()
    table.add_row(
        "whole run",
        *(cell for run in (cold, warm) for cell in _task_cells(run.cache, run.wall_seconds)),
        style="bold",
    )
    scraped = "the workers' /metrics, added up," if summary.worker_ids else "the worker's /metrics"
    table.caption = (
        f"cache figures per task: {scraped} sampled every {SAMPLE_INTERVAL:g} s and as each task "
        "starts and ends, split by the tasks' start and end in Airflow's DB"
    )
    return table


def workers_table(summary: DemoSummary) -> Table:
    """On a cluster, one row per worker, cold and warm side by side: the bytes it served to readers (from its
    memory tier, disk tier and S3 together), the bytes it read from S3 and the page hit ratio of its reads.

    A worker serves the blocks it owns: reads of other blocks are redirected to their owners (WebHDFS OPEN) or
    fetched from them (the peer API), so each worker's figures are those of its share of the data.
    """
    cold, warm = summary.cold, summary.warm
    table = Table(title="bytes served per worker: each worker's /metrics over each run")
    table.add_column("worker")
    table.add_column("WebHDFS")
    for run in ("cold", "warm"):
        for heading in ("served", "S3 read", "hit ratio"):
            table.add_column(f"{run} {heading}", justify="right")
    for url, worker in summary.worker_ids.items():
        table.add_row(worker, url, *(c for run in (cold, warm) for c in _worker_cells(run.workers.get(url))))
    table.add_section()
    total = (c for run in (cold, warm) for c in _worker_cells(run.cache))
    table.add_row("cluster", f"{len(summary.worker_ids)} workers", *total, style="bold")
    served = [url for url in summary.worker_ids if sum(warm.workers.get(url, CacheCounters()).bytes_served.values())]
    table.caption = (
        f"{len(served)} of {len(summary.worker_ids)} workers served bytes in the warm run; Spark addresses the "
        "cluster as one HA nameservice, and each block is served by the worker that owns it"
    )
    return table


def _worker_cells(counters: CacheCounters | None) -> tuple[str, str, str]:
    counters = counters or CacheCounters()
    return mib(sum(counters.bytes_served.values())), mib(counters.s3_bytes_read), _ratio_cell(counters)


def savings_line(summary: DemoSummary) -> str:
    """One line on what the cache saved the warm run against the cold one: bytes read from S3, the time of the tasks
    that read them in the cold run, and the whole run's time.

    The tasks that read S3 are named apart because the rest of a run (Spark reading and writing through the cache
    in both runs) takes as long cold as warm, give or take what the machine's load does to it: their time is what
    the cache's S3 reads cost, the whole run's difference is that plus noise.
    """
    cold, warm = summary.cold, summary.warm
    fewer = cold.s3_bytes_read - warm.s3_bytes_read
    traffic = f"{mib(abs(fewer))} {'fewer' if fewer >= 0 else 'more'} bytes read from S3"
    readers = [
        task
        for task, counters in cold.tasks.items()
        if task != OUTSIDE_TASKS and counters.s3_bytes_read >= READER_SHARE * max(cold.s3_bytes_read, 1)
    ]
    if readers:
        saved = sum(cold.task_seconds(t) - warm.task_seconds(t) for t in readers)
        each = ", ".join(f"{t} {cold.task_seconds(t):.1f} s -> {warm.task_seconds(t):.1f} s" for t in readers)
        traffic += f", {saved:.1f} s in the tasks that read them cold ({each})"
    return f"what the cache saved: {traffic}; whole run: {_speed(cold.wall_seconds, warm.wall_seconds)}"


READER_SHARE = 0.01
"""A task "reads S3" in ``savings_line`` if it read at least this share of the cold run's S3 bytes."""


def _speed(cold: float, warm: float) -> str:
    if warm > 0 and cold >= warm:
        return f"warm run {cold / warm:.2f}x faster ({cold - warm:.1f} s saved; cold {cold:.1f} s, warm {warm:.1f} s)"
    return f"warm run {warm - cold:.1f} s slower (cold {cold:.1f} s, warm {warm:.1f} s)"
