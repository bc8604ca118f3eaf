"""``make demo``: one Spark job run twice through the cache, cold then warm, with what each run cost in S3 reads.

``python -m infra.demo`` starts the local stack (S3 emulator and one cache worker) in ``.local/demo``, writes a
partitioned Parquet table of game events straight into the emulator (never through the cache, so the first run finds
the cache empty), submits ``spark_jobs/scan_events.py`` twice with ``spark-submit --master local[2]``, and prints for
each run the rows scanned, the wall time, the bytes read from S3 and served by each cache tier, and the page hit
ratio, read from the worker's ``/metrics``. The warm run should read nothing from S3.

``DEMO_EVENTS`` (or ``--events``) sets the number of events, 1,000,000 by default.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from infra.cache_process import REPO_ROOT
from infra.service_process import ServiceStartError, log_tail
from infra.stack import DEMO_BUCKET, LocalStack, StackInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_EVENTS = 1_000_000
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "demo"
EVENTS_PREFIX = "warehouse/events"
SCAN_JOB = REPO_ROOT / "spark_jobs" / "scan_events.py"
SPARK_TIMEOUT = 900.0

EVENT_TYPES = ("session_start", "match_start", "match_end", "level_up", "ad_view", "purchase", "session_end")
EVENT_WEIGHTS = (0.18, 0.22, 0.21, 0.07, 0.17, 0.03, 0.12)
PLATFORMS = ("android", "ios", "pc", "console")
PLATFORM_WEIGHTS = (0.45, 0.30, 0.15, 0.10)
COUNTRIES = ("US", "BR", "DE", "JP", "KR", "FR", "GB", "IN", "MX", "ID")
PRICES = (0.99, 1.99, 4.99, 9.99, 19.99, 49.99, 99.99)
PRICE_WEIGHTS = (0.35, 0.25, 0.18, 0.12, 0.06, 0.03, 0.01)
# s > 1 gives the long tail of game telemetry: a few whales and grinders, many players seen once or twice.
ZIPF_EXPONENT = 1.1

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("player_id", pa.int64()),
        ("event_type", pa.string()),
        ("platform", pa.string()),
        ("country", pa.string()),
        ("amount", pa.float64()),
        ("ts", pa.timestamp("ms", tz="UTC")),
    ]
)


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why, in a line (plus a log tail where one helps)."""


# --- the data set --------------------------------------------------------------------------------------------


def game_event_files(
    events: int,
    *,
    days: int = 3,
    files_per_day: int = 4,
    first_day: date = date(2026, 11, 1),
    seed: int = 2026,
) -> Iterator[tuple[str, pa.Table]]:
    """Game telemetry as Hive-partitioned files: yields ``("dt=YYYY-MM-DD/part-NNNNN.parquet", table)`` pairs.

    ``events`` rows in all, spread evenly over ``days`` partitions of ``files_per_day`` files each, with the columns
    of ``EVENT_SCHEMA`` (``dt`` lives in the path only, as Spark writes it). Player activity follows a Zipf law; each
    player keeps one platform and country; only purchases carry an amount. The same arguments give the same data.
    """
    if events < 0 or days < 1 or files_per_day < 1:
        raise ValueError("events must be >= 0, days and files_per_day >= 1")
    rng = np.random.default_rng(seed)
    players = max(100, events // 20)
    activity = 1.0 / np.arange(1, players + 1) ** ZIPF_EXPONENT
    activity /= activity.sum()
    # Rank 1 should not be player 1: ids are a shuffled range, so the busiest players are scattered.
    player_ids = rng.permutation(players).astype(np.int64) + 100_000
    player_platform = rng.choice(len(PLATFORMS), size=players, p=PLATFORM_WEIGHTS)
    player_country = rng.integers(0, len(COUNTRIES), size=players)
    platforms, countries, event_types = (np.array(v, dtype=object) for v in (PLATFORMS, COUNTRIES, EVENT_TYPES))
    purchase = EVENT_TYPES.index("purchase")

    files = days * files_per_day
    next_id = 0
    for index in range(files):
        rows = events // files + (1 if index < events % files else 0)
        day = first_day + timedelta(days=index // files_per_day)
        rank = rng.choice(players, size=rows, p=activity)
        kind = rng.choice(len(EVENT_TYPES), size=rows, p=EVENT_WEIGHTS)
        price = np.asarray(PRICES)[rng.choice(len(PRICES), size=rows, p=PRICE_WEIGHTS)]
        midnight_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        ts = np.sort(rng.integers(0, 86_400_000, size=rows)) + midnight_ms
        table = pa.table(
            {
                "event_id": np.arange(next_id, next_id + rows, dtype=np.int64),
                "player_id": player_ids[rank],
                "event_type": event_types[kind],
                "platform": platforms[player_platform[rank]],
                "country": countries[player_country[rank]],
                "amount": np.where(kind == purchase, price, 0.0),
                "ts": ts,
            },
            schema=EVENT_SCHEMA,
        )
        next_id += rows
        yield f"dt={day.isoformat()}/part-{index % files_per_day:05d}.parquet", table


@dataclass(frozen=True)
class UploadedTable:
    """What ``upload_event_files`` put in S3."""

    uri: str
    files: int
    rows: int
    bytes: int


def upload_event_files(
    client: S3Client, bucket: str, prefix: str, files: Iterable[tuple[str, pa.Table]]
) -> UploadedTable:
    """Write each ``(relative path, table)`` as Snappy Parquet to ``s3://bucket/prefix/<relative path>``.

    Raises ``DemoError`` if S3 refuses a file or does not answer.
    """
    count = rows = size = 0
    for relative, table in files:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="snappy")
        body = buffer.getvalue()
        key = f"{prefix.strip('/')}/{relative}"
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body)
        except (BotoCoreError, ClientError) as exc:
            raise DemoError(f"cannot write s3://{bucket}/{key}: {exc}") from exc
        count, rows, size = count + 1, rows + table.num_rows, size + len(body)
    return UploadedTable(uri=f"s3://{bucket}/{prefix.strip('/')}/", files=count, rows=rows, bytes=size)


# --- what the cache reports ------------------------------------------------------------------------------------

# Straight to loopback: a proxy configured in the environment must not sit between us and the worker.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class CacheCounters:
    """The worker's data-path counters at one moment; subtract two snapshots to get what happened in between."""

    s3_bytes_read: float = 0.0
    bytes_served: Mapping[str, float] = field(default_factory=dict)
    page_hits: Mapping[str, float] = field(default_factory=dict)
    page_misses: float = 0.0
    open_seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> CacheCounters:
        """Read the counters from a Prometheus text exposition (missing counters count as 0)."""
        s3_read = misses = open_seconds = 0.0
        served: dict[str, float] = {}
        hits: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "lakecache_s3_bytes_read_total":
                    s3_read += sample.value
                elif sample.name == "lakecache_page_misses_total":
                    misses += sample.value
                elif sample.name == "lakecache_bytes_served_total":
                    tier = sample.labels.get("tier", "")
                    served[tier] = served.get(tier, 0.0) + sample.value
                elif sample.name == "lakecache_page_hits_total":
                    tier = sample.labels.get("tier", "")
                    hits[tier] = hits.get(tier, 0.0) + sample.value
                elif sample.name == "lakecache_request_seconds_sum" and sample.labels.get("op") == "OPEN":
                    open_seconds += sample.value
        return cls(s3_read, served, hits, misses, open_seconds)

    @classmethod
    def scrape(cls, webhdfs_url: str, timeout: float = 10.0) -> CacheCounters:
        """The counters of the worker whose WebHDFS port answers at ``webhdfs_url``.

        Raises ``DemoError`` if ``/metrics`` does not answer.
        """
        try:
            with _DIRECT.open(f"{webhdfs_url}/metrics", timeout=timeout) as response:
                return cls.parse(response.read().decode())
        except OSError as exc:
            raise DemoError(f"cannot read {webhdfs_url}/metrics: {exc}") from exc

    def __sub__(self, earlier: CacheCounters) -> CacheCounters:
        def minus(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
            return {k: now.get(k, 0.0) - before.get(k, 0.0) for k in set(now) | set(before)}

        return CacheCounters(
            self.s3_bytes_read - earlier.s3_bytes_read,
            minus(self.bytes_served, earlier.bytes_served),
            minus(self.page_hits, earlier.page_hits),
            self.page_misses - earlier.page_misses,
            self.open_seconds - earlier.open_seconds,
        )


# --- the runs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRun:
    """One submission of the scan job and what it cost the cache."""

    name: str
    rows: int
    wall_seconds: float
    scan_seconds: float
    s3_bytes_read: int
    served_memory: int
    served_disk: int
    served_s3: int
    page_hits: int
    page_misses: int
    open_seconds: float
    result: Mapping[str, Any]

    @property
    def served_from_cache(self) -> int:
        """Bytes served from the memory and disk tiers."""
        return self.served_memory + self.served_disk

    @property
    def hit_ratio(self) -> float:
        """Page reads served from a tier over all page reads (0 when no page was read)."""
        reads = self.page_hits + self.page_misses
        return self.page_hits / reads if reads else 0.0


@dataclass(frozen=True)
class DemoSummary:
    """The demo's outcome: the table it wrote and the cold and warm runs of the scan over it."""

    events: int
    table: UploadedTable
    cold: ScanRun
    warm: ScanRun
    seconds: float


def spark_submit_path() -> Path:
    """The ``spark-submit`` installed beside this Python (pyspark's wheel puts it in the venv's ``bin``)."""
    return Path(sys.executable).parent / "spark-submit"


def spark_submit_argv(job: Path, *args: str) -> list[str]:
    """The command line that runs PySpark script ``job`` with ``args`` on ``local[2]``, UI off."""
    master = ["--master", "local[2]", "--driver-memory", "1g", "--conf", "spark.ui.enabled=false"]
    return [str(spark_submit_path()), *master, str(job), *args]


def spark_submit_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus what a local ``spark-submit`` needs: loopback only, and this Python for driver and workers."""
    no_proxy = ",".join(p for p in (environ.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    return {
        **environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def submit_scan(stack: LocalStack, name: str, table_uri: str, work_dir: Path) -> ScanRun:
    """Run ``scan_events.py`` over ``table_uri`` with ``spark-submit --master local[2]``; measure it at the cache.

    Spark's output goes to ``work_dir/spark-<name>.log``: both streams, because spark-submit passes the Python
    driver's stderr (a traceback) to its own stdout. Raises ``DemoError`` if the job fails or times out.
    """
    output = work_dir / f"scan-{name}.json"
    log_path = work_dir / f"spark-{name}.log"
    argv = spark_submit_argv(SCAN_JOB, "--input", table_uri, "--output-json", str(output))
    env = spark_submit_env(os.environ)
    output.unlink(missing_ok=True)  # a summary left by an earlier run must not pass for this one's
    before = CacheCounters.scrape(stack.webhdfs_url)
    started = time.monotonic()
    try:
        with log_path.open("wb") as log:
            done = subprocess.run(
                argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=SPARK_TIMEOUT, check=False
            )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"spark-submit ({name} run) did not finish in {SPARK_TIMEOUT:.0f}s; see {log_path}") from exc
    except OSError as exc:
        raise DemoError(f"cannot run {argv[0]}: {exc}") from exc
    wall = time.monotonic() - started
    delta = CacheCounters.scrape(stack.webhdfs_url) - before
    if done.returncode != 0:
        raise DemoError(
            f"spark-submit ({name} run) exited with code {done.returncode}; last lines of {log_path}:\n"
            + log_tail(log_path, 25)
        )
    try:
        result = json.loads(output.read_text())
    except (OSError, ValueError) as exc:
        raise DemoError(f"the {name} run left no readable summary in {output}: {exc}") from exc
    return ScanRun(
        name=name,
        rows=int(result["rows"]),
        wall_seconds=wall,
        scan_seconds=float(result["seconds"]),
        s3_bytes_read=int(delta.s3_bytes_read),
        served_memory=int(delta.bytes_served.get("memory", 0.0)),
        served_disk=int(delta.bytes_served.get("disk", 0.0)),
        served_s3=int(delta.bytes_served.get("s3", 0.0)),
        page_hits=int(sum(delta.page_hits.values())),
        page_misses=int(delta.page_misses),
        open_seconds=delta.open_seconds,
        result=result,
    )


def _same_answer(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    keys = ("rows", "distinct_players", "revenue", "groups")
    return all(first.get(k) == second.get(k) for k in keys)


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _print_run(console: Console, run: ScanRun) -> None:
    console.print(
        f"[bold]{run.name}[/] run: {run.rows:,} rows scanned in {run.wall_seconds:.1f}s wall "
        f"({run.scan_seconds:.1f}s scanning; the cache spent {run.open_seconds:.2f}s answering OPEN); "
        f"read from S3 {_mib(run.s3_bytes_read)} ({run.s3_bytes_read:,} bytes); "
        f"served from memory {_mib(run.served_memory)}, disk {_mib(run.served_disk)}, S3 {_mib(run.served_s3)}; "
        f"page hit ratio {run.hit_ratio:.1%} ({run.page_hits:,} hits, {run.page_misses:,} misses)"
    )


def top_groups_table(result: Mapping[str, Any], rows: int = 5) -> Table:
    """The first ``rows`` groups of a scan summary (the job sorts them by revenue)."""
    table = Table(title=f"top {rows} of {result['aggregate_rows']} (platform, event_type) groups by revenue")
    table.add_column("platform")
    table.add_column("event_type")
    for heading in ("events", "revenue", "players"):
        table.add_column(heading, justify="right")
    for group in result["groups"][:rows]:
        table.add_row(
            str(group["platform"]),
            str(group["event_type"]),
            f"{group['events']:,}",
            f"{group['revenue']:,.2f}",
            f"{group['players']:,}",
        )
    return table


def comparison_table(summary: DemoSummary) -> Table:
    """The cold and warm runs side by side."""
    table = Table(title=f"scan_events.py over {summary.table.rows:,} events ({_mib(summary.table.bytes)} of Parquet)")
    table.add_column("run")
    headings = (
        "rows",
        "wall s",
        "scan s",
        "cache OPEN s",
        "S3 bytes read",
        "served: memory",
        "served: disk",
        "page hits",
    )
    for heading in headings:
        table.add_column(heading, justify="right")
    for run in (summary.cold, summary.warm):
        table.add_row(
            run.name,
            f"{run.rows:,}",
            f"{run.wall_seconds:.1f}",
            f"{run.scan_seconds:.1f}",
            f"{run.open_seconds:.2f}",
            f"{run.s3_bytes_read:,}",
            _mib(run.served_memory),
            _mib(run.served_disk),
            f"{run.hit_ratio:.1%}",
        )
    return table


def _prepare_state_dir(state_dir: Path) -> None:
    running = StackInfo.read(state_dir)
    if running is not None and running.processes_running:
        raise DemoError(
            f"a stack already runs in {state_dir} (another demo?); "
            f"stop it with `python -m infra.stack down --state-dir {state_dir}`"
        )
    # Wiped so that every demo starts from the same empty cache and logs of this run only.
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)


def run_demo(events: int, state_dir: Path, *, console: Console | None = None) -> DemoSummary:
    """Run the whole demo in ``state_dir`` (wiped first) and return its outcome; the stack is stopped in all cases.

    Raises ``DemoError`` if a step fails, including when the warm run's answer differs from the cold run's, and
    ``infra.service_process.ServiceStartError`` if the stack does not come up.
    """
    # Off a terminal rich assumes 80 columns and folds the table; log files and CI have room for more.
    console = console or Console(soft_wrap=True, width=shutil.get_terminal_size((120, 24)).columns)
    state_dir = state_dir.resolve()
    started = time.monotonic()
    _prepare_state_dir(state_dir)
    with LocalStack(state_dir) as stack:
        console.print(f"stack up: S3 emulator {stack.s3_endpoint}, cache {stack.webhdfs_uri} (state in {state_dir})")
        generated = time.monotonic()
        table = upload_event_files(stack.s3.client(), DEMO_BUCKET, EVENTS_PREFIX, game_event_files(events))
        console.print(
            f"wrote {table.rows:,} events in {table.files} Parquet files ({_mib(table.bytes)}) to {table.uri} "
            f"straight into S3, bypassing the cache, in {time.monotonic() - generated:.1f}s"
        )
        table_uri = f"{stack.webhdfs_uri}/{EVENTS_PREFIX}"
        runs = []
        for name in ("cold", "warm"):
            console.print(f"submitting scan_events.py ({name} run) over {table_uri} ...")
            run = submit_scan(stack, name, table_uri, state_dir)
            if name == "cold":
                console.print(top_groups_table(run.result))
            _print_run(console, run)
            runs.append(run)
        cold, warm = runs
        if not _same_answer(cold.result, warm.result):
            raise DemoError("the warm run's aggregate differs from the cold run's: the cache served different bytes")
    summary = DemoSummary(events=events, table=table, cold=cold, warm=warm, seconds=time.monotonic() - started)
    console.print(comparison_table(summary))
    console.print(
        f"S3 bytes read: cold {cold.s3_bytes_read:,}, warm {warm.s3_bytes_read:,}; "
        f"scan time: cold {cold.scan_seconds:.1f}s, warm {warm.scan_seconds:.1f}s; the demo took {summary.seconds:.0f}s"
    )
    return summary


def _events_default(environ: Mapping[str, str]) -> int:
    raw = environ.get("DEMO_EVENTS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_EVENTS
    if not raw.isdigit() or int(raw) < 1:
        raise DemoError(f"DEMO_EVENTS must be a positive whole number, got {environ['DEMO_EVENTS']!r}")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.demo [--events N] [--state-dir DIR]``: 0 if both runs succeeded, 1 with a message if not."""
    parser = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, help="events to generate (default: $DEMO_EVENTS or 1,000,000)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="wiped first; default: %(default)s")
    args = parser.parse_args(argv)
    try:
        events = args.events if args.events is not None else _events_default(os.environ)
        if events < 1:
            raise DemoError(f"--events must be positive, got {events}")
        run_demo(events, args.state_dir)
    except (DemoError, ServiceStartError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted; the stack was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
