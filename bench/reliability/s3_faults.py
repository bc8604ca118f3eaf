"""S3 faults during the ETL: ``telemetry_daily_etl`` succeeds through a cache whose S3 fails now and then, with the
output of a clean run, and the cache never serves bytes S3 does not hold.

The cache's under store goes through the fault proxy (``infra.s3_faults``: 500s, 503 SlowDowns, connection resets,
GET bodies cut short, bodies stalled past the worker's read timeout), and the ETL runs through it, one of two ways
(``FaultPlan.dag``):

- **the DAG**: ``airflow dags test telemetry_daily_etl`` on the local stack (``infra.stack.LocalStack`` with the
  proxy in front of the emulator, Airflow as ``make demo`` runs it): the warmup's load job, both Spark jobs, both
  Great Expectations validations and the metastore sync, every task of which must succeed;
- **its Spark jobs alone**: ``spark_jobs/ingest_events.py`` (then ``spark_jobs/daily_aggregates.py``) with
  ``spark-submit`` on the arguments the DAG's tasks give them, which is what reads and writes through the cache
  without Airflow's minute of start-up per task; what ``make test`` runs (see ``plans``).

Each run:

1. a clean run on a fresh cache (the proxy injects nothing): its tables read back from S3 are the reference;
2. a fresh cache again (disk tiers wiped), faults on, the same ETL; meanwhile a reader reads random ranges of the
   raw files and of the tables as they appear through the cache and compares each with S3's bytes
   (``served.check_read``);
3. faults off: the faulty run's tables read back from S3 must be the clean run's, row for row (Parquet file names
   differ between runs, so the rows are compared, not the files); every object under the mounts read whole through
   the cache (pages cached while S3 failed included) must be S3's bytes; the workers' ``lakecache_s3_retries_total``
   must show the retries.

Run on one worker and, with ``CHAOS_FULL=1``, on a three-worker cluster too (Spark addresses it as Hadoop's HA
nameservice, whose client fails over and retries a ``RetriableException``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.dataset as ds
from pyarrow import fs as pafs

from bench.cache_cluster import QUICK_MEMBERSHIP, cache_workers
from bench.measured import fresh_work_dir
from bench.reliability.campaign import FULL, QUICK, Budget, GuaranteeResult
from bench.reliability.served import WRONG, check_read, headline_first, metric_samples
from cache_service.cluster.client_settings import DEFAULT_NAMESERVICE, ha_settings
from infra.cache_process import REPO_ROOT, CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring
from infra.demo import DemoError
from infra.demo.airflow_home import AirflowHome
from infra.demo.cluster import ClusterLayout
from infra.demo.runs import DEMO_DAY
from infra.demo.runs import run_etl as run_dag
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator, s3_client
from infra.s3_faults import FAULTS, FaultRates, S3Faults
from infra.spark_submit import spark_submit_argv, spark_submit_env
from infra.stack import DEMO_BUCKET, DEMO_MOUNTS, LocalStack
from spark_jobs.telemetry.generator import write_day_to_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WORK_ROOT = REPO_ROOT / ".local" / "chaos"
BUCKET = DEMO_BUCKET
DAY = DEMO_DAY
MOUNTS = DEMO_MOUNTS
"""The local stack's bucket and mounts, which the DAG's connections and paths name."""
TABLES = {
    "ingest_events": ("warehouse/events_clean", "warehouse/events_quarantine"),
    "daily_aggregates": (
        "warehouse/agg/daily_active_users",
        "warehouse/agg/sessions_daily",
        "warehouse/agg/revenue_daily",
        "warehouse/agg/retention_cohorts",
    ),
}
"""The tables each job writes, by the job's name."""
HEADLINE = ("faults_injected", "retries", "wrong_reads", "rows_compared", "objects_swept", "events")
"""The counts the report's summary shows first."""
GUARANTEE = (
    "under S3 faults the ETL succeeds with a clean run's output, the cache never serves bytes S3 does not hold, and "
    "its metrics show the retries"
)
READ_TIMEOUT = 1.0
"""The workers' S3 read timeout (seconds): a slow body stalls twice as long, so every one of them is a timeout."""
WORKER_CONFIG = {
    "under_store": {"read_timeout": f"{READ_TIMEOUT:g}s", "connect_timeout": "2s"},
    # Small pages: the day's few megabytes are many pages and many ranged GETs, each one a chance of a fault.
    "store": {"page_size": "64KiB"},
}
MEMORY, DISK = "32MiB", "1GiB"
JOB_TIMEOUT = 900.0
SPARK_JOBS = REPO_ROOT / "spark_jobs"


@dataclass(frozen=True)
class FaultPlan:
    """One run: ``workers`` workers, a raw day of ``events`` events, ``jobs`` (names of ``TABLES``) submitted in
    order, faults at ``rates`` drawn from ``seed``."""

    workers: int
    events: int = 4000
    jobs: tuple[str, ...] = ("ingest_events", "daily_aggregates")
    # Body faults only strike GETs with a body (a fraction of the requests), so their rates are the higher ones.
    rates: FaultRates = field(
        default_factory=lambda: FaultRates(
            server_error=0.015, slow_down=0.025, reset=0.015, cut_body=0.03, slow_body=0.03, stall=2 * READ_TIMEOUT
        )
    )
    seed: int = 16
    dag: bool = False
    """Run the whole DAG through Airflow rather than its Spark jobs with ``spark-submit``."""

    @property
    def tables(self) -> list[str]:
        """The tables the run's jobs write."""
        return [table for job in self.jobs for table in TABLES[job]]

    @property
    def label(self) -> str:
        """``1 worker``, ``3 workers``, ``the DAG, 3 workers``..."""
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        return f"the DAG, {workers}" if self.dag else workers


def plans(budget: Budget) -> list[FaultPlan]:
    """On ``QUICK``, the ingest job on one worker over a day of 20,000 events (it reads the raw day from S3 and
    writes, stages and publishes through the cache; the aggregates job reads what the ingest published, whose pages
    the cache took as it wrote them, so it adds a JVM's start to the budget and few S3 reads). On a larger budget
    (``FULL``), the whole DAG through Airflow on a bigger day with more faults, on one worker and on three."""
    if (budget.cases or 0) > (QUICK.cases or 0):
        rates = FaultRates(
            server_error=0.02, slow_down=0.03, reset=0.02, cut_body=0.04, slow_body=0.04, stall=2 * READ_TIMEOUT
        )
        return [FaultPlan(n, events=60_000, rates=rates, dag=True) for n in (1, 3)]
    return [FaultPlan(1, events=20_000, jobs=("ingest_events",))]


def s3_faults(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """Every run of ``plans(budget)``, each in a folder of its own under ``work_dir``."""
    work = fresh_work_dir("s3_faults", work_dir or WORK_ROOT / "s3_faults")
    full = budget == FULL
    return [run(plan, work / plan.label.replace(",", "").replace(" ", "_"), full=full) for plan in plans(budget)]


def run(plan: FaultPlan, work: Path, *, full: bool = False) -> GuaranteeResult:
    """One run of ``plan`` under ``work``: a clean run, then a faulty one; their counts and whether the guarantee
    held."""
    started = time.monotonic()
    violations: list[str] = []
    counts: dict[str, int] = {"events": plan.events}
    with _etl(plan, work) as (s3_endpoint, proxy, workers):
        client = s3_client(s3_endpoint)
        write_day_to_s3(client, BUCKET, "raw/events", DAY, plan.events, seed=plan.seed)
        clean_failure = workers.run_etl("clean")
        if clean_failure:
            violations.append(f"the clean run failed: {clean_failure}")
        clean = {table: table_rows(s3_endpoint, table) for table in plan.tables}
        if not any(clean.values()):
            violations.append("the clean run wrote no rows: there is nothing to compare with")

        workers.restart_empty()
        proxy.set_rates(plan.rates)
        reader = RangeReader(workers.urls, client, seed=plan.seed)
        with reader.running():
            failure = workers.run_etl("faulty")
        proxy.faults_off()
        if failure:
            violations.append(f"the faulty run failed: {failure}")
        report = proxy.report()
        counts["s3_requests"] = int(report["requests"])
        counts.update({f"injected_{kind}": int(n) for kind, n in report["faults"].items()})
        retries = Counter[str]()
        for url in workers.urls:
            retries.update(s3_retries(url))
        counts["retries"] = int(sum(retries.values()))
        counts.update({f"retries_{reason}": int(n) for reason, n in sorted(retries.items())})
        counts.update({f"reads_{outcome}": n for outcome, n in sorted(reader.outcomes.items())})
        violations += reader.violations

        rows = 0
        for table in plan.tables:
            faulty = table_rows(s3_endpoint, table)
            rows += sum(faulty.values())
            if faulty != clean[table]:
                missing, extra = clean[table] - faulty, faulty - clean[table]
                violations.append(
                    f"{table}: {sum(missing.values())} rows of the clean run missing, {sum(extra.values())} others"
                )
        counts["rows_compared"] = rows
        swept, wrong = sweep(workers.urls, client)
        counts["objects_swept"] = swept
        violations += wrong

    injected = sum(counts[f"injected_{kind}"] for kind in FAULTS)
    counts["faults_injected"] = injected
    counts["wrong_reads"] = sum(counts.get(f"reads_{outcome}", 0) for outcome in WRONG)
    if not injected:
        violations.append("no fault was injected")
    elif not counts["retries"]:
        violations.append(f"{injected} faults injected, yet lakecache_s3_retries_total counted none")
    return GuaranteeResult.judged(
        f"S3 faults during the ETL, {plan.label}",
        GUARANTEE,
        headline_first(counts, HEADLINE),
        violations,
        campaign="s3_faults",
        full=full,
        started=started,
    )


# --- the workers and the jobs -------------------------------------------------------------------------------------


class EtlWorkers:
    """The workers of a run (one, or a cluster) and the ETL through them: the DAG on ``stack`` (with ``home``), or
    ``plan``'s Spark jobs with ``spark-submit``. ``cluster`` waits for a ring of the given workers (None: one
    worker)."""

    def __init__(
        self,
        plan: FaultPlan,
        workers: list[CacheProcess],
        work: Path,
        *,
        ring: Callable[[list[CacheProcess]], None] | None = None,
        stack: LocalStack | None = None,
        home: AirflowHome | None = None,
    ) -> None:
        self.plan = plan
        self.workers = workers
        self.work = work
        self.ring = ring
        self.stack = stack
        self.home = home

    @property
    def urls(self) -> list[str]:
        """Every worker's WebHDFS URL."""
        return [w.webhdfs_url for w in self.workers]

    def restart_empty(self) -> None:
        """Restart every worker with its disk tier wiped: a cache that holds nothing."""
        for worker in self.workers:
            worker.stop()
            shutil.rmtree(worker.data_dir, ignore_errors=True)
        for worker in self.workers:
            worker.start()
        if self.ring is not None:
            self.ring(self.workers)

    def run_etl(self, name: str) -> str:
        """Run the ETL once (``name``: its folder under the run's, and its logs'); '' when it succeeded, else what
        failed (the task or job, and the end of its log)."""
        work = self.work / name
        work.mkdir(parents=True, exist_ok=True)
        if self.stack is None or self.home is None:
            return self._run_jobs(work)
        try:
            run_dag(self.stack, self.home, name, DAY, work)
        except DemoError as exc:
            return str(exc)
        return ""

    def _run_jobs(self, work: Path) -> str:
        """Submit the plan's jobs (``ingest_events``, then ``daily_aggregates``) with the DAG's arguments, in order."""
        if self.ring is None:
            root, conf = self.workers[0].webhdfs_uri, {}
        else:
            settings = ha_settings(cluster_report(self.urls[0])["members"])
            root, conf = f"webhdfs://{DEFAULT_NAMESERVICE}", {f"spark.hadoop.{k}": v for k, v in settings.items()}
        day = DAY.isoformat()
        ingest = ["--raw", f"{root}/raw/events/dt={day}", "--date", day]
        ingest += ["--output", f"{root}/warehouse/events_clean", "--quarantine", f"{root}/warehouse/events_quarantine"]
        aggregates = ["--events", f"{root}/warehouse/events_clean", "--output-root", f"{root}/warehouse/agg"]
        arguments = {"ingest_events": ingest, "daily_aggregates": [*aggregates, "--date", day]}
        for name in self.plan.jobs:
            job, args = SPARK_JOBS / f"{name}.py", arguments[name]
            log = work / f"{job.stem}.log"
            conf = {**conf, "spark.sql.shuffle.partitions": "4"}
            with log.open("wb") as out:
                done = subprocess.run(
                    spark_submit_argv(job, *args, master="local[2]", conf=conf),
                    cwd=REPO_ROOT,
                    env=spark_submit_env(os.environ),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=JOB_TIMEOUT,
                    check=False,
                )
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                return f"{job.name} exited with {done.returncode} (see {log}): " + " | ".join(tail)
        return ""


@contextmanager
def _etl(plan: FaultPlan, work: Path) -> Iterator[tuple[str, S3Faults, EtlWorkers]]:
    """S3 (its endpoint), the fault proxy in front of it (injecting nothing yet) and the workers behind that."""
    quiet = FaultRates(stall=plan.rates.stall)
    overrides = WORKER_CONFIG
    if plan.workers > 1:
        overrides = {**WORKER_CONFIG, "cluster": {"block_size": "1MiB", **QUICK_MEMBERSHIP}}
    if plan.dag:
        with LocalStack(work / "stack", workers=plan.workers, s3_faults=quiet, worker_overrides=overrides) as stack:
            assert stack.s3_faults is not None
            urls = [w.webhdfs_url for w in stack.workers]
            layout = ClusterLayout.wait(urls) if plan.workers > 1 else None
            home = AirflowHome(work / "airflow", stack, cluster=layout)
            home.migrate()
            ring = (lambda workers: wait_for_ring(workers, len(workers))) if layout else None
            yield (
                stack.s3_endpoint,
                stack.s3_faults,
                EtlWorkers(plan, stack.workers, work, ring=ring, stack=stack, home=home),
            )
        return
    with (
        S3Emulator(work / "s3", buckets=[BUCKET]) as s3,
        S3Faults(s3.endpoint_url, work, quiet, seed=plan.seed) as proxy,
        cache_workers(
            work,
            plan.workers,
            s3_endpoint=proxy.url,
            mounts=MOUNTS,
            overrides=overrides,
            memory_capacity=MEMORY,
            disk_capacity=DISK,
        ) as (workers, ring),
    ):
        yield s3.endpoint_url, proxy, EtlWorkers(plan, workers, work, ring=ring if plan.workers > 1 else None)


# --- checks ----------------------------------------------------------------------------------------------------------


class RangeReader:
    """Reads random ranges of the objects under the mounts through random workers while the jobs run, each checked
    against S3 (``served.check_read``); ``outcomes`` counts them by outcome, ``violations`` names the wrong ones."""

    def __init__(self, urls: list[str], s3: S3Client, *, seed: int) -> None:
        self.urls = urls
        self.s3 = s3
        self.outcomes: Counter[str] = Counter()
        self.violations: list[str] = []
        self._random = random.Random(seed)
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Read in a thread of its own for as long as the block runs."""
        thread = threading.Thread(target=self._read, name="range-reader", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=120)

    def _read(self) -> None:
        while not self._stop.is_set():
            objects = [(k, size) for k, size in _objects(self.s3).items() if size > 0]
            if not objects:
                self._stop.wait(0.2)
                continue
            key, size = self._random.choice(objects)
            offset = self._random.randrange(size)
            length = self._random.randint(1, 512 * 1024)
            outcome = check_read(self._random.choice(self.urls), self.s3, BUCKET, key, "/" + key, offset, length)
            self.outcomes[outcome] += 1
            if outcome in WRONG:
                self.violations.append(f"served {outcome} bytes of /{key} [{offset}, +{length}) while S3 failed")


def sweep(urls: list[str], s3: S3Client) -> tuple[int, list[str]]:
    """Read every object under the mounts whole through the workers, in turn; how many, and the ones not S3's."""
    wrong = []
    objects = sorted(_objects(s3))
    for n, key in enumerate(objects):
        outcome = check_read(urls[n % len(urls)], s3, BUCKET, key, "/" + key)
        if outcome != "same":
            wrong.append(f"after the faults, /{key} read whole through the cache was {outcome}")
    return len(objects), wrong


def _objects(s3: S3Client) -> dict[str, int]:
    """Every object of the bucket (under both mounts) but Spark's staging leftovers, with its size."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            if "_temporary" not in item["Key"] and ".spark-staging" not in item["Key"]:
                found[item["Key"]] = item["Size"]
    return found


def table_rows(s3_endpoint: str, prefix: str) -> Counter[str]:
    """The rows of the Parquet table under ``prefix`` (hive partitions as columns), as a multiset of their JSON."""

    filesystem = pafs.S3FileSystem(
        endpoint_override=s3_endpoint,
        scheme="http",
        access_key=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True)
    if not [i for i in filesystem.get_file_info(selector) if i.type == pafs.FileType.File]:
        return Counter()
    table = ds.dataset(f"{BUCKET}/{prefix}", filesystem=filesystem, format="parquet", partitioning="hive").to_table()
    return Counter(json.dumps(row, sort_keys=True, default=str) for row in table.to_pylist())


def s3_retries(webhdfs_url: str) -> dict[str, float]:
    """The worker's ``lakecache_s3_retries_total`` by reason."""
    return {labels["reason"]: value for labels, value in metric_samples(webhdfs_url, "lakecache_s3_retries_total")}
