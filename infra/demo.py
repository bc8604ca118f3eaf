"""``make demo``: the daily telemetry ETL run by Airflow through the cache, cold then warm, and what each run cost.

``python -m infra.demo`` starts the local stack (S3 emulator and one cache worker, free loopback ports) in
``.local/demo``, writes a day of raw game telemetry (JSON lines, defects included) straight into the emulator (never
through the cache, so the first run finds the cache empty), and runs ``airflow dags test telemetry_daily_etl`` twice
with a local ``AIRFLOW_HOME`` (SQLite, ``.local/demo/airflow``): warmup, ingest (Spark), Great Expectations on the
clean events, aggregates (Spark), Great Expectations on the aggregates, metastore sync (Glue, served by the emulator).
The second run reprocesses the same day (the jobs overwrite their partitions, so it is idempotent) with the raw
input already in the cache; what the jobs read besides is what they have just written through the cache.

It prints the rows of every stage, the data-quality results, and for each run its wall time, the bytes read from S3,
the bytes each cache tier served and the page hit ratio, read from the worker's ``/metrics``. The warm run should read
(nearly) nothing from S3. The stack is stopped at the end; every demo starts from a wiped ``.local/demo``.

``DEMO_EVENTS`` (or ``--events``) sets the number of raw events, 1,000,000 by default.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from infra.s3_emulator import EMULATOR_CREDENTIALS
from infra.service_process import ServiceStartError, log_tail
from infra.stack import DEMO_BUCKET, LocalStack, StackInfo
from spark_jobs.telemetry.generator import DayUpload, write_day_to_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_EVENTS = 1_000_000
MIN_EVENTS = 1_000  # fewer leave the generator no room for its defects and the checks nothing to check
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "demo"
DAG_ID = "telemetry_daily_etl"
DAGS_FOLDER = REPO_ROOT / "dags"
DEMO_DAY = date(2026, 11, 22)
"""The day the demo processes; its runs have the next day as logical date (the DAG handles the day before)."""
RAW_PREFIX = "raw/events"  # s3://lake/raw is the cache's /raw mount, where the DAG reads raw/events/dt=<day>
RAW_FILES = 4
SEED = 2026
DAG_TIMEOUT = 3600.0
MIGRATE_TIMEOUT = 300.0
AIRFLOW = (sys.executable, "-m", "airflow")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why, in a line (plus a log excerpt where one helps)."""


# --- for the Spark job tests and the benchmarks: the scan job's data set, and spark-submit on local[2] ---------
# Not used by the demo itself any more; kept here, where tests/spark_jobs and bench import them from.

EVENTS_PREFIX = "warehouse/events"
SCAN_JOB = REPO_ROOT / "spark_jobs" / "scan_events.py"

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
    s3_bytes_written: float = 0.0

    @classmethod
    def parse(cls, text: str) -> CacheCounters:
        """Read the counters from a Prometheus text exposition (missing counters count as 0)."""
        s3_read = s3_written = misses = open_seconds = 0.0
        served: dict[str, float] = {}
        hits: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "lakecache_s3_bytes_read_total":
                    s3_read += sample.value
                elif sample.name == "lakecache_s3_bytes_written_total":
                    s3_written += sample.value
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
        return cls(
            s3_bytes_read=s3_read,
            bytes_served=served,
            page_hits=hits,
            page_misses=misses,
            open_seconds=open_seconds,
            s3_bytes_written=s3_written,
        )

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
            s3_bytes_read=self.s3_bytes_read - earlier.s3_bytes_read,
            bytes_served=minus(self.bytes_served, earlier.bytes_served),
            page_hits=minus(self.page_hits, earlier.page_hits),
            page_misses=self.page_misses - earlier.page_misses,
            open_seconds=self.open_seconds - earlier.open_seconds,
            s3_bytes_written=self.s3_bytes_written - earlier.s3_bytes_written,
        )


# --- Airflow -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DagRunRecord:
    """What one ``airflow dags test`` left in the metadata DB and its log."""

    run_id: str
    state: str
    task_states: Mapping[str, str]
    task_seconds: Mapping[str, float]
    xcoms: Mapping[str, Any]
    log_path: Path
    wall_seconds: float

    @property
    def failed_tasks(self) -> list[str]:
        """Tasks that did not succeed or get skipped by a branch, in the order they started."""
        return [t for t, s in self.task_states.items() if s not in ("success", "skipped")]


class AirflowHome:
    """A local ``AIRFLOW_HOME``: SQLite metadata DB, the repository's ``dags/``, connections to a running stack.

    Airflow runs in subprocesses whose environment is built here, never inherited (``AIRFLOW__*``, connections and
    ``CACHE_*`` of whoever runs the demo are dropped), so the demo does not depend on the developer's ``~/airflow``.
    The plugins folder is empty: the DAGs import the provider package themselves, and loading every module under
    ``plugins/`` would import Great Expectations into each task for nothing.
    """

    def __init__(self, path: Path, stack: LocalStack) -> None:
        self.path = path.resolve()
        self.stack = stack
        self.plugins_folder = self.path / "plugins"

    @property
    def db_path(self) -> Path:
        """The SQLite metadata DB."""
        return self.path / "airflow.db"

    def connections(self) -> dict[str, str]:
        """The DAG's connections as ``AIRFLOW_CONN_*``: the cache (the emulator as its S3 and Glue), and Spark."""
        cache = self.stack.cache
        lakecache = {
            "conn_type": "lakecache",
            "host": cache.host,
            "port": cache.webhdfs_port,
            "password": cache.token,
            "extra": {
                "s3_endpoint_url": self.stack.s3_endpoint,
                "glue_endpoint_url": self.stack.s3_endpoint,
                "region": EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
            },
        }
        return {
            "AIRFLOW_CONN_LAKECACHE_DEFAULT": json.dumps(lakecache),
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        }

    def env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment of an Airflow subprocess, from ``environ`` minus any Airflow or cache settings."""
        dropped = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "CACHE_")
        env = {k: v for k, v in environ.items() if not k.startswith(dropped)}
        no_proxy = ",".join(p for p in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
        bin_dir = str(Path(sys.executable).parent)  # spark-submit lives beside this Python
        env.update(EMULATOR_CREDENTIALS)
        env.update(self.connections())
        env.update(
            AIRFLOW_HOME=str(self.path),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(self.plugins_folder),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.db_path}",
            PATH=os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p),
            SPARK_LOCAL_IP="127.0.0.1",
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
            PYTHONUNBUFFERED="1",
        )
        return env

    def airflow(self, args: Sequence[str], log_path: Path, timeout: float) -> int:
        """Run ``airflow <args>`` in this home, both streams to ``log_path``; returns the exit code.

        Raises ``DemoError`` if it cannot start or does not finish within ``timeout`` seconds.
        """
        argv = [*AIRFLOW, *args]
        try:
            with log_path.open("wb") as log:
                done = subprocess.run(
                    argv,
                    cwd=REPO_ROOT,
                    env=self.env(os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"`airflow {' '.join(args)}` did not finish in {timeout:.0f}s; see {log_path}") from exc
        except OSError as exc:
            raise DemoError(f"cannot run {' '.join(argv)}: {exc}") from exc
        return done.returncode

    def migrate(self) -> None:
        """``airflow db migrate``: create the SQLite metadata DB. Raises ``DemoError`` (with the log's tail)."""
        self.plugins_folder.mkdir(parents=True, exist_ok=True)
        log_path = self.path / "migrate.log"
        code = self.airflow(["db", "migrate"], log_path, MIGRATE_TIMEOUT)
        if code != 0:
            raise DemoError(
                f"`airflow db migrate` exited with code {code}; last lines of {log_path}:\n" + log_tail(log_path, 25)
            )

    def test_dag(self, dag_id: str, logical_date: date, log_path: Path) -> DagRunRecord:
        """Run ``airflow dags test <dag_id> <logical_date>`` and read back the run it made.

        A failed run is returned, not raised (its ``state`` says so); raises ``DemoError`` if Airflow left no run.
        """
        started = time.monotonic()
        code = self.airflow(["dags", "test", dag_id, logical_date.isoformat()], log_path, DAG_TIMEOUT)
        wall = time.monotonic() - started
        with sqlite3.connect(self.db_path) as db:
            row = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if row is None:
                raise DemoError(
                    f"`airflow dags test {dag_id}` exited with code {code} and made no run; last lines of {log_path}:\n"
                    + log_tail(log_path, 25)
                )
            run_id, state = row
            tasks = db.execute(
                "SELECT task_id, state, duration FROM task_instance WHERE dag_id = ? AND run_id = ? "
                "ORDER BY start_date IS NULL, start_date",
                (dag_id, run_id),
            ).fetchall()
            xcoms = {
                task_id: json.loads(value)
                for task_id, value in db.execute(
                    "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'",
                    (dag_id, run_id),
                )
            }
        return DagRunRecord(
            run_id=run_id,
            state=str(state),
            task_states={task: str(task_state) for task, task_state, _ in tasks},
            task_seconds={task: float(seconds or 0.0) for task, _, seconds in tasks},
            xcoms=xcoms,
            log_path=log_path,
            wall_seconds=wall,
        )


def task_log(log_text: str, task_id: str) -> list[str]:
    """The lines ``airflow dags test`` logged while it ran ``task_id`` (empty if the task never started)."""
    lines = log_text.splitlines()
    start = next((i for i, line in enumerate(lines) if f"[DAG TEST] starting task_id={task_id} " in line), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(lines)) if f"[DAG TEST] end task task_id={task_id} " in lines[i]), None)
    return lines[start : (end if end is not None else len(lines))]


_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(\w+) *\] ")
_LOG_SUFFIX = re.compile(r" +\[[\w.]+\](?: \w+=\S*)+$")


def failure_excerpt(lines: Sequence[str], context: int = 12) -> list[str]:
    """What explains a failed task, from its log lines: the last ``context`` lines it logged before its traceback,
    then the exception the traceback ends with (without the stack frames). Timestamps and logger names are cut."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), None)
    if start is None:
        return [_compact(line) for line in lines[-context:]]
    end = next((i for i in range(start + 1, len(lines)) if _LOG_PREFIX.match(lines[i])), len(lines))
    # The exception follows the last stack frame, whose lines are indented; it may span lines (a quality report).
    last_frame = max((i for i in range(start, end) if lines[i].startswith("  ")), default=start)
    before = [line for line in lines[:start] if "[DAG TEST]" not in line][-context:]
    return [_compact(line) for line in before] + list(lines[last_frame + 1 : end])


def _compact(line: str) -> str:
    return _LOG_SUFFIX.sub("", _LOG_PREFIX.sub(lambda m: f"{m[1]}: ", line))


# --- what the pipeline reports -------------------------------------------------------------------------------

_INGESTED = re.compile(
    r"ingested (?P<raw>[\d,]+) raw lines for (?P<day>\S+) in [\d.]+s: (?P<clean>[\d,]+) clean, "
    r"(?P<duplicates>[\d,]+) duplicates, (?P<quarantined>[\d,]+) quarantined"
)
_QUARANTINED = re.compile(r"\] quarantined +(?P<lines>[\d,]+) +(?P<reason>\S+)")


def _count(text: str) -> int:
    return int(text.replace(",", ""))


@dataclass(frozen=True)
class StageRows:
    """Rows at each stage of one run: the ingest job's reconciliation, and each aggregate table's new partition."""

    raw_lines: int
    clean: int
    duplicates: int
    quarantined: int
    quarantined_by_reason: Mapping[str, int]
    clean_validated: int
    aggregates: Mapping[str, int]

    @property
    def reconciles(self) -> bool:
        """Every raw line is accounted for once: ``raw_lines == clean + duplicates + quarantined``."""
        return self.raw_lines == self.clean + self.duplicates + self.quarantined

    @classmethod
    def from_run(cls, record: DagRunRecord, log_text: str) -> StageRows:
        """Read the ingest job's summary from its task's log and the row counts the validate tasks returned.

        Raises ``DemoError`` if the ingest summary or a validate task's return value is missing.
        """
        ingest = task_log(log_text, "ingest_events")
        found = next((m for m in map(_INGESTED.search, ingest) if m), None)
        if found is None:
            raise DemoError(f"the ingest_events task logged no summary line (see {record.log_path})")
        reasons = {m["reason"]: _count(m["lines"]) for m in map(_QUARANTINED.search, ingest) if m}
        events, aggregates = record.xcoms.get("validate_events"), record.xcoms.get("validate_aggregates")
        if not isinstance(events, dict) or not isinstance(aggregates, dict):
            raise DemoError(f"the validate tasks returned no row counts (see {record.log_path})")
        return cls(
            raw_lines=_count(found["raw"]),
            clean=_count(found["clean"]),
            duplicates=_count(found["duplicates"]),
            quarantined=_count(found["quarantined"]),
            quarantined_by_reason=dict(sorted(reasons.items())),
            clean_validated=int(events["rows"]),
            aggregates={str(k): int(v) for k, v in aggregates["tables"].items()},
        )


@dataclass(frozen=True)
class SuiteResult:
    """One Great Expectations suite's outcome on one table, as the validate task wrote it."""

    table: str
    suite: str
    success: bool
    evaluated: int
    failed: int
    path: Path

    @classmethod
    def read(cls, path: Path) -> SuiteResult:
        """The result JSON at ``path``. Raises ``DemoError`` if it is missing or not a result."""
        try:
            data = json.loads(path.read_text())
            return cls(
                table=str(data["table"]),
                suite=str(data["suite"]),
                success=bool(data["success"]),
                evaluated=int(data["evaluated"]),
                failed=int(data["failed"]),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"cannot read the data-quality result {path}: {exc}") from exc


def quality_results(record: DagRunRecord) -> tuple[SuiteResult, ...]:
    """Every suite result of the run: the clean events first, then the aggregate tables by name.

    The validate tasks write them side by side, in the folder whose path ``validate_events`` returned.
    """
    events = record.xcoms.get("validate_events")
    if not isinstance(events, dict) or "results" not in events:
        raise DemoError(f"validate_events returned no result path (see {record.log_path})")
    first = Path(events["results"])
    rest = sorted(p for p in first.parent.glob("*.json") if p != first)
    return tuple(SuiteResult.read(p) for p in (first, *rest))


def catalog_changes(record: DagRunRecord) -> dict[str, str]:
    """What ``metastore_sync`` did to each table (by short name), in a few words: ``new table, +1 partition``."""
    results = record.xcoms.get("metastore_sync")
    changes: dict[str, str] = {}
    for result in results if isinstance(results, list) else []:
        name = str(result.get("table", "")).rpartition(".")[2]
        if "skipped" in result:
            changes[name] = "skipped (no data)"
            continue
        done = []
        if result.get("create_table"):
            done.append("new table")
        elif result.get("update_table"):
            done.append("new schema")
        for key, change in _PARTITION_CHANGES:
            count = len(result.get(key) or ())
            if count:
                done.append(change.format(count, "" if count == 1 else "s"))
        changes[name] = ", ".join(done) or "unchanged"
    return changes


_PARTITION_CHANGES = (
    ("add_partitions", "+{} partition{}"),
    ("update_partitions", "{} partition{} replaced"),
    ("drop_partitions", "-{} partition{}"),
)


# --- the runs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtlRun:
    """One run of the DAG: how it went, what each stage produced, and what it cost the cache."""

    name: str
    record: DagRunRecord
    stages: StageRows
    quality: tuple[SuiteResult, ...]
    cache: CacheCounters
    warmup: Mapping[str, Any]
    catalog: Mapping[str, str]

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
        reads = self.page_hits + self.page_misses
        return self.page_hits / reads if reads else 0.0


@dataclass(frozen=True)
class DemoSummary:
    """The demo's outcome: the raw day it wrote and the cold and warm runs of the DAG over it."""

    events: int
    day: date
    raw: DayUpload
    cold: EtlRun
    warm: EtlRun
    seconds: float


def run_etl(stack: LocalStack, home: AirflowHome, name: str, day: date, work_dir: Path) -> EtlRun:
    """Run the DAG once for ``day`` (logical date: the next day) and measure it at the cache.

    The run's log goes to ``work_dir/airflow-<name>.log``. Raises ``DemoError`` naming the first task that failed,
    with the end of what that task logged, if the run did not succeed.
    """
    log_path = work_dir / f"airflow-{name}.log"
    before = CacheCounters.scrape(stack.webhdfs_url)
    record = home.test_dag(DAG_ID, day + timedelta(days=1), log_path)
    delta = CacheCounters.scrape(stack.webhdfs_url) - before
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
        warmup=warmup if isinstance(warmup, dict) else {},
        catalog=catalog_changes(record),
    )


# --- what the demo prints ------------------------------------------------------------------------------------


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _bytes(size: int) -> str:
    return f"{_mib(size)} ({size:,} B)" if size else "0 B"


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
    table.caption = "result JSON files in " + "; ".join(f"{_relative(d)}/ ({name})" for name, d in folders.items())
    return table


def comparison_table(summary: DemoSummary) -> Table:
    """The cold and warm runs side by side: time, S3 traffic, what each tier served, hit ratio."""
    cold, warm = summary.cold, summary.warm
    table = Table(title=f"cold vs warm: {summary.raw.lines:,} raw events ({_mib(summary.raw.bytes)} of JSON lines)")
    table.add_column("")
    table.add_column("cold run", justify="right")
    table.add_column("warm run", justify="right")
    table.add_row("run time (airflow dags test)", f"{cold.wall_seconds:.1f} s", f"{warm.wall_seconds:.1f} s")
    for task in cold.record.task_seconds:
        if task in ("warm_inputs", "ingest_events", "validate_events", "daily_aggregates", "validate_aggregates"):
            first, second = cold.record.task_seconds[task], warm.record.task_seconds.get(task, 0.0)
            table.add_row(f"  task {task}", f"{first:.1f} s", f"{second:.1f} s")
    table.add_row("bytes read from S3", _bytes(cold.s3_bytes_read), _bytes(warm.s3_bytes_read))
    table.add_row(
        "  of which warmup",
        _bytes(int(cold.warmup.get("bytes_from_s3", 0))),
        _bytes(int(warm.warmup.get("bytes_from_s3", 0))),
    )
    table.add_row("bytes written through to S3", _bytes(cold.s3_bytes_written), _bytes(warm.s3_bytes_written))
    for tier, source in (("memory", "memory tier"), ("disk", "disk tier"), ("s3", "S3 (page misses)")):
        table.add_row(f"served from {source}", _mib(cold.served(tier)), _mib(warm.served(tier)))
    table.add_row(
        "page hit ratio",
        f"{cold.hit_ratio:.1%} ({cold.page_hits:,} hits, {cold.page_misses:,} misses)",
        f"{warm.hit_ratio:.1%} ({warm.page_hits:,} hits, {warm.page_misses:,} misses)",
    )
    return table


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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


def run_demo(events: int, state_dir: Path, *, console: Console | None = None) -> DemoSummary:
    """Run the whole demo in ``state_dir`` (wiped first) and return its outcome; the stack is stopped in all cases.

    Raises ``DemoError`` if a step fails (a DAG run that does not succeed, or a warm run whose rows differ from the
    cold run's), and ``infra.service_process.ServiceStartError`` if the stack does not come up.
    """
    if events < MIN_EVENTS:
        raise DemoError(f"the demo needs at least {MIN_EVENTS:,} events, got {events:,}")
    # Off a terminal rich assumes 80 columns and folds the tables; log files and CI have room for more.
    console = console or Console(soft_wrap=True, width=shutil.get_terminal_size((160, 24)).columns)
    state_dir = state_dir.resolve()
    started = time.monotonic()
    _prepare_state_dir(state_dir)
    with LocalStack(state_dir) as stack:
        console.print(f"stack up: S3 emulator {stack.s3_endpoint}, cache {stack.webhdfs_uri} (state in {state_dir})")
        home = AirflowHome(state_dir / "airflow", stack)
        step = time.monotonic()
        home.migrate()
        console.print(f"Airflow home {home.path} (SQLite) migrated in {time.monotonic() - step:.1f}s")
        step = time.monotonic()
        try:
            raw = write_day_to_s3(stack.s3.client(), DEMO_BUCKET, RAW_PREFIX, DEMO_DAY, events, SEED, RAW_FILES)
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise DemoError(f"cannot write the raw events to s3://{DEMO_BUCKET}/{RAW_PREFIX}: {exc}") from exc
        console.print(
            f"wrote {raw.lines:,} raw events for {DEMO_DAY} ({len(raw.keys)} JSON-lines files, {_mib(raw.bytes)}) "
            f"to {raw.uri} straight into S3, bypassing the cache, in {time.monotonic() - step:.1f}s"
        )
        runs = []
        for name in ("cold", "warm"):
            console.print(f"{name} run: airflow dags test {DAG_ID} {DEMO_DAY + timedelta(days=1)} ...")
            run = run_etl(stack, home, name, DEMO_DAY, state_dir)
            console.print(
                f"{name} run: success in {run.wall_seconds:.1f}s; read {_mib(run.s3_bytes_read)} from S3, "
                f"page hit ratio {run.hit_ratio:.1%} (log: {_relative(run.record.log_path)})"
            )
            runs.append(run)
        cold, warm = runs
        if cold.stages != warm.stages:
            raise DemoError(
                f"the warm run's rows differ from the cold run's: {warm.stages} != {cold.stages}; "
                "a rerun of a day must give the same tables"
            )
    summary = DemoSummary(
        events=events, day=DEMO_DAY, raw=raw, cold=cold, warm=warm, seconds=time.monotonic() - started
    )
    console.print(stages_table(summary))
    console.print(quality_table(summary))
    console.print(comparison_table(summary))
    share = warm.s3_bytes_read / cold.s3_bytes_read if cold.s3_bytes_read else 0.0
    console.print(
        f"S3 bytes read: cold {cold.s3_bytes_read:,}, warm {warm.s3_bytes_read:,} ({share:.1%} of cold); "
        f"run time: cold {cold.wall_seconds:.1f}s, warm {warm.wall_seconds:.1f}s; "
        f"the demo took {summary.seconds:.0f}s and stopped the stack"
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
    parser.add_argument("--events", type=int, help="raw events to generate (default: $DEMO_EVENTS or 1,000,000)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="wiped first; default: %(default)s")
    args = parser.parse_args(argv)
    try:
        events = args.events if args.events is not None else _events_default(os.environ)
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
