"""Warming a data set from S3: a cache worker's load job against boto3's ``download_file``, both through the S3 model.

The data set (``Plan``: quick, 8 objects of 32 MiB) is written straight into the S3 emulator; everything that
reads it goes through the S3 latency model (30 ms to first byte, 90 MB/s per connection). Each repetition times:

- **boto3**: ``s3.download_file`` of every object into a new temporary folder, the objects one after another as a
  user's loop would, with boto3's default ``TransferConfig`` (8 MiB parts above 8 MiB, up to 10 threads an object).
  The client is made before the clock starts;
- **boto3, all at once**: the same, every object in a thread of its own (a script with a thread pool);
- **cache, N workers**: ``POST /admin/v1/load`` of the data set's folder on new, empty workers (started before the
  clock starts), until the job's ``finished_at``: the time a user waits, path expansion included. On a cluster
  (``three_workers``: Redis and 3 workers) the load is asked of one worker, which warms every block on its owner,
  all owners at once.

Repetitions alternate the order. A setup is a context manager yielding its workers, the first of which takes the
load; each has a target of its own. Ratios are taken within each repetition (boto3 time over cache time), then their
median. The CPU time of every process taking part (boto3's or the workers', the S3 model's, the emulator's) is
measured over each timed interval: on a machine of 2 cores it says what limits a setup.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench import plots
from bench.cache_cluster import CacheCluster
from bench.http_reads import process_cpu_seconds
from bench.measured import fresh_work_dir, measured_section, upload_random
from bench.report import IMG_DIR, markdown_table
from bench.section import Section
from cache_service.admin_client import AdminClient, AdminEndpoint, job_route
from cache_service.jobs.load import RUN_BYTES
from infra.cache_metrics import CacheCounters
from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from infra.s3_model import S3Model

BUCKET = "bench"
PREFIX = "warmup"
MOUNT = "/warmup"
POLL_SECONDS = 0.1
BOTO3 = "boto3, one after another"
BOTO3_ALL = "boto3, all at once"
ONE_WORKER = "cache, 1 worker"
THREE_WORKERS = "cache, 3 workers"
CLIENT = "boto3 or the workers"
MODEL = "S3 model"
EMULATOR = "S3 emulator"
MACHINE = "every process"  # the whole machine's busy CPU time, other tenants' included
PARTS = (CLIENT, MODEL, EMULATOR)
# The cluster's blocks are cut at the load's run length: at the default 64 MiB, the quick data set (8 objects of
# 32 MiB) would be 8 blocks, and how 8 blocks fall on 3 workers is a lottery (one worker often owns half of them).
CLUSTER_BLOCK = "8MiB"

Meter = Callable[[], dict[str, float]]
"""CPU seconds used so far by each process (or group of processes) taking part, by name."""


@dataclass(frozen=True)
class Plan:
    """The data set (``objects`` of ``object_bytes``), the repetitions, and the load job's ``parallelism``."""

    objects: int
    object_bytes: int
    repetitions: int
    parallelism: int = 10  # boto3's default max_concurrency: as many connections as one download may use

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> Plan:
        """Smoke: 2 objects of 4 MiB, once. Quick: 8 of 32 MiB (256 MiB), 5 times. Full: 32 of 32 MiB (1 GiB), 5.

        Objects stay at 32 MiB: the emulator rereads an object for every ranged GET, so larger ones would make its
        own time, not the model's, the cost of a GET.
        """
        if smoke:
            return cls(objects=2, object_bytes=4 * 2**20, repetitions=1)
        return cls(objects=32 if full else 8, object_bytes=32 * 2**20, repetitions=5)

    @property
    def total_bytes(self) -> int:
        """The data set's size."""
        return self.objects * self.object_bytes


@dataclass(frozen=True)
class WarmupRun:
    """One timed warmup: who did it, in which repetition, and how long it took."""

    setup: str
    repetition: int
    seconds: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU time of each process taking part, over the timed interval (``CLIENT``, ``MODEL``, ``EMULATOR``)."""
    s3_bytes_by_worker: list[float] = field(default_factory=list)
    """What each worker read from S3 (cache setups only)."""


def cpu_meter(client: Callable[[], Sequence[int]], model: S3Model, emulator: S3Emulator) -> Meter:
    """A ``Meter`` of the processes ``client()`` names, the S3 model and the emulator."""

    def measure() -> dict[str, float]:
        groups = {CLIENT: list(client()), MODEL: [model.pid or 0], EMULATOR: [emulator.pid or 0]}
        spent = {name: sum(process_cpu_seconds(pids)) for name, pids in groups.items()}
        return spent | {MACHINE: machine_busy_seconds()}

    return measure


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _spent(meter: Meter, before: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in meter().items()}


def upload(s3: S3Emulator, plan: Plan) -> dict[str, str]:
    """Write the data set into the emulator; returns each key's digest."""
    return upload_random(s3, BUCKET, PREFIX, plan.objects, plan.object_bytes)


# --- boto3 -------------------------------------------------------------------------------------------------------


def boto3_download(
    endpoint: str, digests: dict[str, str], work: Path, *, at_once: bool, meter: Meter = dict
) -> tuple[float, dict[str, float]]:
    """Seconds boto3's ``download_file`` takes to fetch every object into a new folder (checked, then removed), and
    the CPU time ``meter`` counts meanwhile."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    target = Path(tempfile.mkdtemp(prefix="boto3-", dir=work))

    def download(key: str) -> None:
        client.download_file(BUCKET, key, str(target / Path(key).name))

    try:
        cpu = meter()
        started = time.perf_counter()
        if at_once:
            with ThreadPoolExecutor(max_workers=len(digests)) as pool:
                list(pool.map(download, digests))
        else:
            for key in digests:
                download(key)
        seconds = time.perf_counter() - started
        cpu = _spent(meter, cpu)
        for key, digest in digests.items():
            if hashlib.blake2b((target / Path(key).name).read_bytes()).hexdigest() != digest:
                raise RuntimeError(f"boto3 downloaded wrong bytes for {key}")
    finally:
        shutil.rmtree(target, ignore_errors=True)
        client.close()
    return seconds, cpu


# --- the cache ---------------------------------------------------------------------------------------------------

CacheSetup = Callable[[Path, str], AbstractContextManager[list[CacheProcess]]]
"""New, empty workers reading S3 at the endpoint given, ``MOUNT`` on the data set; the first takes the load."""


@contextmanager
def one_worker(state_dir: Path, s3_endpoint: str) -> Iterator[list[CacheProcess]]:
    """A new, empty worker alone."""
    with CacheProcess(
        state_dir, s3_endpoint=s3_endpoint, mounts={MOUNT: f"s3://{BUCKET}/{PREFIX}"}, disk_capacity="4GiB"
    ) as worker:
        yield [worker]
    shutil.rmtree(state_dir, ignore_errors=True)


@contextmanager
def three_workers(state_dir: Path, s3_endpoint: str) -> Iterator[list[CacheProcess]]:
    """Redis and three new, empty workers forming one cluster, blocks of ``CLUSTER_BLOCK``."""
    with CacheCluster(
        state_dir,
        3,
        s3_endpoint=s3_endpoint,
        mounts={MOUNT: f"s3://{BUCKET}/{PREFIX}"},
        overrides={"cluster": {"block_size": CLUSTER_BLOCK}},
        disk_capacity="4GiB",
    ) as cluster:
        yield cluster.workers
    shutil.rmtree(state_dir, ignore_errors=True)


# In the page's order; each has its target in ``TARGETS``.
CACHE_SETUPS: dict[str, CacheSetup] = {ONE_WORKER: one_worker, THREE_WORKERS: three_workers}
TARGETS = {ONE_WORKER: "warmup_vs_boto3_one_worker", THREE_WORKERS: "warmup_vs_boto3_three_workers"}


def cache_load(entry: CacheProcess, plan: Plan, meter: Meter = dict) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Seconds from sending ``POST /admin/v1/load`` of the data set to the job's end, the job's record, and the CPU
    time ``meter`` counts from the request until the job is seen to have ended.

    The end is the job's own ``finished_at`` (the worker runs on this machine, on the same clock), so polling less
    often costs the worker less without blurring the figure. Raises ``RuntimeError`` unless the job succeeded
    having read the whole data set from S3.
    """
    admin = AdminClient(AdminEndpoint.from_url(entry.webhdfs_url, token=entry.token, timeout=60))
    cpu = meter()
    started = time.time()
    job = admin.post("load", {"paths": [MOUNT], "parallelism": plan.parallelism})
    while job["state"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
        job = admin.get(job_route(job["id"]))
    cpu = _spent(meter, cpu)
    progress = job["progress"]
    if job["state"] != "succeeded" or progress["bytes_from_s3"] != plan.total_bytes:
        raise RuntimeError(f"the load job did not warm the data set: {job}")
    return job["finished_at"] - started, job, cpu


def _cache_load(name: str, work: Path, plan: Plan, model: S3Model, emulator: S3Emulator, repetition: int) -> WarmupRun:
    """``cache_load`` on new workers of setup ``name``; raises ``RuntimeError`` if they read more or less than the
    data set from S3."""
    with CACHE_SETUPS[name](work / f"cache-{repetition}", model.url) as workers:
        meter = cpu_meter(lambda: [w.pid or 0 for w in workers], model, emulator)
        seconds, _, cpu = cache_load(workers[0], plan, meter)
        s3_read = [CacheCounters.scrape(w.webhdfs_url).s3_bytes_read for w in workers]
    if sum(s3_read) != plan.total_bytes:
        raise RuntimeError(f"the workers read {s3_read} bytes from S3 for a data set of {plan.total_bytes}")
    return WarmupRun(name, repetition, seconds, cpu, s3_read)


def _boto3(name: str, endpoint: str, digests: dict[str, str], work: Path, meter: Meter, repetition: int) -> WarmupRun:
    seconds, cpu = boto3_download(endpoint, digests, work, at_once=name == BOTO3_ALL, meter=meter)
    return WarmupRun(name, repetition, seconds, cpu)


# --- the section ---------------------------------------------------------------------------------------------------


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Time the warmup of the data set by boto3 and by the cache; returns the section."""
    plan = Plan.choose(full, smoke)
    work = fresh_work_dir("warmup", work_dir)
    runs: list[WarmupRun] = []
    with S3Emulator(work / "s3", buckets=[BUCKET]) as s3, S3Model(s3.endpoint_url, work) as model:
        digests = upload(s3, plan)
        ourselves = cpu_meter(lambda: [os.getpid()], model, s3)
        measures: dict[str, Callable[[int], WarmupRun]] = {
            name: functools.partial(_boto3, name, model.url, digests, work, ourselves) for name in (BOTO3, BOTO3_ALL)
        }
        for name in CACHE_SETUPS:
            measures[name] = functools.partial(_cache_load, name, work, plan, model, s3)
        for repetition in range(plan.repetitions):
            order = list(measures) if repetition % 2 == 0 else list(reversed(measures))
            runs += [measures[name](repetition) for name in order]
    return _section(plan, runs, model, full=full, img_dir=img_dir)


def _ratios(runs: list[WarmupRun], peer: str, setup: str) -> list[float]:
    """Per repetition: ``peer``'s time over ``setup``'s."""
    by = {(r.setup, r.repetition): r.seconds for r in runs}
    return [by[(peer, r.repetition)] / r.seconds for r in runs if r.setup == setup]


def _section(plan: Plan, runs: list[WarmupRun], model: S3Model, *, full: bool, img_dir: Path) -> Section:
    setups = list(dict.fromkeys(r.setup for r in runs))
    seconds = {s: [r.seconds for r in runs if r.setup == s] for s in setups}
    mb_per_s = {s: [plan.total_bytes / 1e6 / t for t in values] for s, values in seconds.items()}
    cache_setups = [name for name in CACHE_SETUPS if name in setups]
    ratios = {f"{peer} / {name}": _ratios(runs, peer, name) for name in cache_setups for peer in (BOTO3, BOTO3_ALL)}
    measured = {name: statistics.median(ratios[f"{BOTO3} / {name}"]) for name in cache_setups}

    def cpu_median(setup: str, process: str | None = None) -> float:
        mine = [r for r in runs if r.setup == setup]
        if process is None:
            return statistics.median(sum(r.cpu_seconds.get(p, 0.0) for p in PARTS) / r.seconds for r in mine)
        return statistics.median(r.cpu_seconds.get(process, 0.0) / r.seconds for r in mine)

    cores_busy = {name: cpu_median(name) for name in setups}
    busy_by_process = {name: {p: cpu_median(name, p) for p in (*PARTS, MACHINE)} for name in setups}
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "run_bytes": RUN_BYTES,
        "cluster_block_size": CLUSTER_BLOCK,
        "s3_model": {"latency_ms": model.latency_ms, "bandwidth_mb_per_s": model.bandwidth_mbps},
        "runs": [asdict(r) for r in runs],
        "seconds": seconds,
        "mb_per_s": mb_per_s,
        "ratios_per_repetition": ratios,
        "cores_busy": cores_busy,
        "cores_busy_by_process": busy_by_process,
    }
    image = plots.warmup(results, img_dir / "warmup.png")
    rows = [
        [
            name,
            f"{statistics.median(seconds[name]):.2f}",
            f"{min(seconds[name]):.2f} to {max(seconds[name]):.2f}",
            f"{statistics.median(mb_per_s[name]):.0f}",
            f"{cores_busy[name]:.2f}",
            " / ".join(f"{busy_by_process[name][p]:.2f}" for p in PARTS),
            f"{busy_by_process[name][MACHINE]:.2f}",
        ]
        for name in setups
    ]
    ratio_rows = [
        [name, f"{statistics.median(values):.2f}x", ", ".join(f"{v:.2f}" for v in values)]
        for name, values in ratios.items()
    ]
    text = (
        f"Warming {plan.objects} objects of {plan.object_bytes / 2**20:.0f} MiB "
        f"({plan.total_bytes / 2**20:.0f} MiB) from S3 through the latency model ({model.latency_ms:g} ms to first "
        f"byte, {model.bandwidth_mbps:g} MB/s per connection), {plan.repetitions} repetitions, alternating the "
        f"order. **{BOTO3}**: `s3.download_file` of each object into a temporary folder with boto3's default "
        "`TransferConfig` (parts of 8 MiB above 8 MiB, up to 10 threads for an object), in a loop; "
        f"**{BOTO3_ALL}**: the same with a thread for each object. **{ONE_WORKER}**: `POST /admin/v1/load` of the "
        f"folder on a new, empty worker, `parallelism` {plan.parallelism}, from the request to the job's "
        f"`finished_at` (path expansion included); the job fetches runs of up to {RUN_BYTES // 2**20} MiB of pages, "
        "one ranged GET each, and writes every page to the disk tier as it arrives. "
        f"**{THREE_WORKERS}**: the same load asked of one worker of a new cluster (its own Redis, 3 empty workers "
        "behind the same S3 model), which warms every block on its owner, every owner at once with `parallelism` "
        f"{plan.parallelism} of its own; blocks of {CLUSTER_BLOCK.replace('MiB', ' MiB')} (at the default 64 MiB "
        f"this data set would be {plan.total_bytes // (64 * 2**20) or 1} blocks, and how so few fall on 3 workers "
        "is a lottery). Every download is checked against the uploaded bytes; each load must have read exactly the "
        "data set from S3, summed over its workers. *Cores busy* is the CPU time of every process taking part "
        f"over the timed interval, divided by it; then the same for {CLIENT}, the S3 model and the emulator apart "
        "(this machine has 2 cores, shared with other work); *machine cores busy* is every process's, other "
        "tenants' included (`/proc/stat`).\n\n"
        + markdown_table(
            [
                "setup",
                "median s",
                "range s",
                "median MB/s",
                "cores busy",
                "of which client / S3 model / emulator",
                "machine cores busy",
            ],
            rows,
            "lrrrrrr",
        )
        + "\n"
        + markdown_table(["ratio (boto3 time / cache time)", "median", "per repetition"], ratio_rows, "lrl")
        + "\n"
        + "".join(
            f"Target `{TARGETS[name]}`: {BOTO3} over {name}, the median of the per-repetition ratios: "
            f"**{measured[name]:.2f}x**. "
            for name in cache_setups
        )
        + (_cluster_limits(plan, runs, cores_busy, busy_by_process, model) if THREE_WORKERS in setups else "")
        + f"\n\n![{image[0]}]({image[1]})\n"
    )
    return measured_section(
        "warmup",
        "Warmup: a load job against boto3's download_file",
        full=full,
        markdown=text,
        results=results,
        targets={TARGETS[name]: round(value, 2) for name, value in measured.items()},
    )


def _cluster_limits(
    plan: Plan,
    runs: list[WarmupRun],
    cores_busy: dict[str, float],
    busy_by_process: dict[str, dict[str, float]],
    model: S3Model,
) -> str:
    """What bounds the three-worker load on this machine: cores, the model's one process, its connections."""
    mine = [r for r in runs if r.setup == THREE_WORKERS]
    largest_share = statistics.median(max(r.s3_bytes_by_worker) / plan.total_bytes for r in mine)
    connections = 3 * plan.parallelism
    cap = connections * model.bandwidth_mbps
    achieved = statistics.median(plan.total_bytes / 1e6 / r.seconds for r in mine)
    return (
        f"\n\nWhat bounds {THREE_WORKERS} here: the busiest worker owned a median {largest_share:.0%} of the data "
        f"set (an even split is 33%); the S3 model allows {connections} GETs at once ({plan.parallelism} per "
        f"worker) at {model.bandwidth_mbps:g} MB/s each, {cap:,.0f} MB/s in all, against {achieved:,.0f} MB/s "
        f"achieved, so connections are not the limit; the processes taking part kept "
        f"**{cores_busy[THREE_WORKERS]:.2f} of the 2 cores** busy (workers "
        f"{busy_by_process[THREE_WORKERS][CLIENT]:.2f}, S3 model {busy_by_process[THREE_WORKERS][MODEL]:.2f}, "
        f"emulator {busy_by_process[THREE_WORKERS][EMULATOR]:.2f}; with 1 worker "
        f"{cores_busy[ONE_WORKER]:.2f}) while every process on the machine kept "
        f"**{busy_by_process[THREE_WORKERS][MACHINE]:.2f}** busy: the cores were full, and what the load did not get "
        "went to other tenants. The S3 model is one Python process, so it can use one core at most; "
        "the emulator, the model and the workers all share the same 2 cores, so a cluster on one 2-core machine "
        "adds connections but no CPU: on separate machines each worker would bring its own cores, and S3 its own."
    )
