"""One run of the telemetry DAG measured at the cache, and the demo's outcome: a cold and a warm run of one day.

``run_etl`` runs ``airflow dags test`` once while a ``CounterSampler`` scrapes the workers' ``/metrics`` every half
second, and at once whenever the run's log says a task started or ended (``TaskMarkers``), then reads back what the
run produced (``infra.demo.pipeline_results``) and splits what it cost the cache among its tasks
(``infra.demo.task_costs``). On a cluster the cache's figures are its workers' together, and each worker's are kept
apart too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from infra.cache_metrics import CacheCounters, CounterSampler
from infra.demo import DemoError
from infra.demo.airflow_home import AirflowHome, DagRunRecord, failure_excerpt, task_log
from infra.demo.pipeline_results import StageRows, SuiteResult, catalog_changes, quality_results
from infra.demo.task_costs import OUTSIDE_TASKS, split_by_task
from infra.s3_model import S3ModelConfig
from infra.service_process import log_tail
from infra.stack import LocalStack
from spark_jobs.telemetry.generator import DayUpload

DAG_ID = "telemetry_daily_etl"
DEMO_DAY = date(2026, 11, 22)
"""The day the demo processes; its runs have the next day as logical date (the DAG handles the day before)."""
RAW_PREFIX = "raw/events"  # s3://lake/raw is the cache's /raw mount, where the DAG reads raw/events/dt=<day>
SAMPLE_INTERVAL = 0.5
"""Seconds between two scrapes of the worker's counters during a run, besides those at the tasks' starts and ends."""
_MARKERS = (b"[DAG TEST] starting task_id=", b"[DAG TEST] end task task_id=")


class TaskMarkers:
    """Watches the log of a running ``airflow dags test``: true when a task has started or ended since last asked.

    Given to the ``CounterSampler`` as its ``boundary``, so that a sample falls between two tasks (a few tens of
    milliseconds after the line was logged) instead of somewhere in the half second around the change.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._offset = 0
        self._partial = b""

    def __call__(self) -> bool:
        try:
            with self.log_path.open("rb") as log:
                if log.seek(0, 2) < self._offset:  # a new log in place of the old one: start over
                    self._offset, self._partial = 0, b""
                log.seek(self._offset)
                chunk = log.read()
        except FileNotFoundError:
            return False
        self._offset += len(chunk)
        # A marker may be cut in two by the writer: keep the unfinished last line for the next call.
        text, _, self._partial = (self._partial + chunk).rpartition(b"\n")
        return any(marker in text for marker in _MARKERS)


@dataclass(frozen=True)
class EtlRun:
    """One run of the DAG: how it went, what each stage produced, and what it cost the cache."""

    name: str
    record: DagRunRecord
    stages: StageRows
    quality: tuple[SuiteResult, ...]
    cache: CacheCounters
    tasks: Mapping[str, CacheCounters]
    """What each task cost the cache (see ``infra.demo.task_costs``), in the order the tasks started, then
    ``OUTSIDE_TASKS``; they add up to ``cache``."""
    warmup: Mapping[str, Any]
    catalog: Mapping[str, str]
    workers: Mapping[str, CacheCounters] = field(default_factory=dict)
    """What the run cost each worker, by its WebHDFS URL, in the stack's order; they add up to ``cache``."""

    @property
    def wall_seconds(self) -> float:
        """Wall time of ``airflow dags test``, parsing the DAGs included."""
        return self.record.wall_seconds

    @property
    def s3_bytes_read(self) -> int:
        """Bytes the cache read from S3 during the run (warmup included)."""
        return int(self.cache.s3_bytes_read)

    @property
    def s3_bytes_written(self) -> int:
        """Bytes the cache wrote through to S3 during the run."""
        return int(self.cache.s3_bytes_written)

    def served(self, tier: str) -> int:
        """Bytes the cache served to readers from ``tier`` (``memory``, ``disk`` or ``s3``)."""
        return int(self.cache.bytes_served.get(tier, 0.0))

    @property
    def page_hits(self) -> int:
        """Page reads served from a cache tier."""
        return int(sum(self.cache.page_hits.values()))

    @property
    def page_misses(self) -> int:
        """Page reads that went to S3."""
        return int(self.cache.page_misses)

    @property
    def hit_ratio(self) -> float:
        """Page reads served from a tier over all page reads (0 when no page was read)."""
        return self.cache.hit_ratio

    def task_seconds(self, task: str) -> float:
        """How long ``task`` ran; for ``OUTSIDE_TASKS``, the rest of the run's wall time (Airflow itself)."""
        if task == OUTSIDE_TASKS:
            return max(0.0, self.wall_seconds - sum(self.record.task_seconds.values()))
        return self.record.task_seconds.get(task, 0.0)


@dataclass(frozen=True)
class DemoSummary:
    """The demo's outcome: the raw day it wrote and the cold and warm runs of the DAG over it."""

    events: int
    day: date
    raw: DayUpload
    cold: EtlRun
    warm: EtlRun
    seconds: float
    s3_model: S3ModelConfig | None
    """The latency model between the cache and the emulator, or None if the cache read the emulator directly."""
    worker_ids: Mapping[str, str] = field(default_factory=dict)
    """On a cluster, each worker's id by its WebHDFS URL (empty for a single worker)."""


def run_etl(stack: LocalStack, home: AirflowHome, name: str, day: date, work_dir: Path) -> EtlRun:
    """Run the DAG once for ``day`` (logical date: the next day) and measure it at the cache, task by task.

    The run's log goes to ``work_dir/airflow-<name>.log``. Raises ``DemoError`` naming the first task that failed,
    with the end of what that task logged, if the run did not succeed, and
    ``infra.cache_metrics.CacheMetricsError`` if a worker's ``/metrics`` does not answer before or after it.
    """
    log_path = work_dir / f"airflow-{name}.log"
    urls = [worker.webhdfs_url for worker in stack.workers]
    with CounterSampler(urls, SAMPLE_INTERVAL, boundary=TaskMarkers(log_path)) as sampler:
        record = home.test_dag(DAG_ID, day + timedelta(days=1), log_path)
    samples = sampler.samples
    delta = samples[-1].counters - samples[0].counters
    by_worker = {url: samples[-1].workers[url] - samples[0].workers[url] for url in urls}
    log_text = log_path.read_text(errors="replace")
    if record.state != "success" or record.failed_tasks:
        failed = record.failed_tasks
        task = next((t for t in failed if record.task_states[t] == "failed"), failed[0] if failed else None)
        broken = [t for t in failed if record.task_states[t] == "failed"]
        states = ", ".join(f"{t} failed" for t in broken) or "no task failed"
        if len(failed) > len(broken):
            states += f"; {len(failed) - len(broken)} task(s) did not run"
        excerpt = failure_excerpt(task_log(log_text, task)) if task else []
        if task and excerpt:
            where, tail = f"what {task} logged, and its error", "\n".join(excerpt)
        else:
            where, tail = "the log", log_tail(log_path, 30)
        raise DemoError(
            f"the {name} run of {DAG_ID} ended {record.state} ({states}); the end of {where} ({log_path}):\n{tail}"
        )
    warmup = record.xcoms.get("warm_inputs")
    return EtlRun(
        name=name,
        record=record,
        stages=StageRows.from_run(record, log_text),
        quality=quality_results(record),
        cache=delta,
        tasks=split_by_task(samples, record.task_windows),
        warmup=warmup if isinstance(warmup, dict) else {},
        catalog=catalog_changes(record),
        workers=by_worker,
    )
