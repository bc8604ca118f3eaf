"""The demo from start to end: a wiped state directory, the local stack, a day of raw data, a cold and a warm run.

``run_demo`` is what ``python -m infra.demo`` calls; it prints as it goes and returns a ``DemoSummary``.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from infra.cache_process import REPO_ROOT
from infra.demo import DemoError
from infra.demo.airflow_home import AirflowHome
from infra.demo.cluster import ClusterLayout
from infra.demo.report import (
    comparison_table,
    mib,
    quality_table,
    relative_path,
    s3_model_text,
    savings_line,
    stages_table,
    tasks_table,
    workers_table,
)
from infra.demo.runs import DAG_ID, DEMO_DAY, RAW_PREFIX, DemoSummary, run_etl
from infra.s3_model import S3ModelConfig
from infra.stack import DEMO_BUCKET, LocalStack, StackInfo
from spark_jobs.telemetry.generator import write_day_to_s3

DEFAULT_EVENTS = 1_000_000
MIN_EVENTS = 1_000  # fewer leave the generator no room for its defects and the checks nothing to check
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "demo"
DEFAULT_S3_MODEL = S3ModelConfig()
"""What stands for S3 behind the cache unless told otherwise: the benchmarks' model (30 ms, 90 MB/s)."""
RAW_FILES = 4
SEED = 2026
MAX_WORKERS = 8
"""The most cache workers the demo starts: each is a process with its own memory tier, on a laptop."""


def _prepare_state_dir(state_dir: Path) -> None:
    running = StackInfo.read(state_dir)
    if running is not None and running.processes_running:
        raise DemoError(
            f"a stack already runs in {state_dir} (another demo?); "
            f"stop it with `python -m infra.stack down --state-dir {state_dir}`"
        )
    # Wiped so that every demo starts from the same empty cache, a new Airflow DB and logs of this run only.
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)


def run_demo(
    events: int,
    state_dir: Path,
    *,
    s3_model: S3ModelConfig | None = DEFAULT_S3_MODEL,
    workers: int = 1,
    console: Console | None = None,
) -> DemoSummary:
    """Run the whole demo in ``state_dir`` (wiped first) and return its outcome; the stack is stopped in all cases.

    ``s3_model`` goes between the cache and the emulator (None: the cache reads the emulator directly); the demo's
    own writes of the raw data go to the emulator directly either way. With ``workers`` above 1 the cache is a
    cluster of that many workers on a local Redis, which Spark addresses as Hadoop's HA nameservice
    (``infra.demo.cluster``), and the report adds what each worker served.

    Raises ``DemoError`` if a step fails (a DAG run that does not succeed, or a warm run whose rows differ from the
    cold run's), ``infra.service_process.ServiceStartError`` if the stack does not come up, and
    ``infra.cache_metrics.CacheMetricsError`` if the worker's ``/metrics`` stops answering.
    """
    if events < MIN_EVENTS:
        raise DemoError(f"the demo needs at least {MIN_EVENTS:,} events, got {events:,}")
    if not 1 <= workers <= MAX_WORKERS:
        raise DemoError(f"the demo runs 1 to {MAX_WORKERS} cache workers, got {workers}")
    # Off a terminal rich assumes 80 columns and folds the tables; log files and CI have room for more.
    console = console or Console(soft_wrap=True, width=shutil.get_terminal_size((160, 24)).columns)
    state_dir = state_dir.resolve()
    started = time.monotonic()
    _prepare_state_dir(state_dir)
    with LocalStack(state_dir, s3_model=s3_model, workers=workers) as stack:
        cluster = None
        if workers == 1:
            console.print(
                f"stack up: S3 emulator {stack.s3_endpoint}, cache {stack.webhdfs_uri} reading S3 at "
                f"{stack.under_store_endpoint} (state in {state_dir})"
            )
        else:
            cluster = ClusterLayout.wait([w.webhdfs_url for w in stack.workers])
            members = ", ".join(f"{cluster.worker_ids[url]} {url}" for url in cluster.worker_ids)
            console.print(
                f"stack up: S3 emulator {stack.s3_endpoint}, a cache cluster of {workers} workers on "
                f"{stack.info.redis_url} ({members}) reading S3 at {stack.under_store_endpoint}; Spark addresses "
                f"it as {cluster.uri}, Hadoop's HA nameservice (state in {state_dir})"
            )
        console.print(s3_model_text(s3_model))
        home = AirflowHome(state_dir / "airflow", stack, cluster=cluster)
        step = time.monotonic()
        home.migrate()
        console.print(f"Airflow home {home.path} (SQLite) migrated in {time.monotonic() - step:.1f}s")
        step = time.monotonic()
        try:
            raw = write_day_to_s3(stack.s3.client(), DEMO_BUCKET, RAW_PREFIX, DEMO_DAY, events, SEED, RAW_FILES)
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise DemoError(f"cannot write the raw events to s3://{DEMO_BUCKET}/{RAW_PREFIX}: {exc}") from exc
        console.print(
            f"wrote {raw.lines:,} raw events for {DEMO_DAY} ({len(raw.keys)} JSON-lines files, {mib(raw.bytes)}) "
            f"to {raw.uri} straight into S3, bypassing the cache, in {time.monotonic() - step:.1f}s"
        )
        runs = []
        for name in ("cold", "warm"):
            console.print(f"{name} run: airflow dags test {DAG_ID} {DEMO_DAY + timedelta(days=1)} ...")
            run = run_etl(stack, home, name, DEMO_DAY, state_dir)
            console.print(
                f"{name} run: success in {run.wall_seconds:.1f}s; read {mib(run.s3_bytes_read)} from S3, "
                f"page hit ratio {run.hit_ratio:.1%} (log: {relative_path(run.record.log_path)})"
            )
            runs.append(run)
        cold, warm = runs
        if cold.stages != warm.stages:
            raise DemoError(
                f"the warm run's rows differ from the cold run's: {warm.stages} != {cold.stages}; "
                "a rerun of a day must give the same tables"
            )
    summary = DemoSummary(
        events=events,
        day=DEMO_DAY,
        raw=raw,
        cold=cold,
        warm=warm,
        seconds=time.monotonic() - started,
        s3_model=s3_model,
        worker_ids=dict(cluster.worker_ids) if cluster is not None else {},
    )
    console.print(stages_table(summary))
    console.print(quality_table(summary))
    console.print(comparison_table(summary))
    console.print(tasks_table(summary))
    if summary.worker_ids:
        console.print(workers_table(summary))
    console.print(savings_line(summary))
    console.print(f"the demo took {summary.seconds:.0f}s and stopped the stack")
    return summary
