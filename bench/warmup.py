"""Warming a data set from S3: a cache worker's load job against boto3's ``download_file``, both through the S3 model.

The data set (``Plan``: quick, 8 objects of 32 MiB) is written straight into the S3 emulator; everything that
reads it goes through the S3 latency model (30 ms to first byte, 90 MB/s per connection). Each repetition times:

- **boto3**: ``s3.download_file`` of every object into a new temporary folder, the objects one after another as a
  user's loop would, with boto3's default ``TransferConfig`` (8 MiB parts above 8 MiB, up to 10 threads an object).
  The client is made before the clock starts;
- **boto3, all at once**: the same, every object in a thread of its own (a script with a thread pool);
- **cache, N workers**: ``POST /admin/v1/load`` of the data set's folder on a new, empty worker (started before the
  clock starts), until the job's ``finished_at``: the time a user waits, path expansion included.

Repetitions alternate the order. A setup is a context manager yielding the worker that takes the load
(``one_worker``); a cluster is one more setup in ``CACHE_SETUPS`` with a target of its own. Ratios are taken within
each repetition (boto3 time over cache time), then their median.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from bench import plots
from bench.measured import fresh_work_dir, measured_section
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


def upload(s3: S3Emulator, plan: Plan) -> dict[str, str]:
    """Write the data set into the emulator; returns each key's digest."""
    client = s3.client()
    digests = {}
    for index in range(plan.objects):
        key = f"{PREFIX}/part-{index:04d}.bin"
        body = os.urandom(plan.object_bytes)
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
        digests[key] = hashlib.blake2b(body).hexdigest()
    return digests


# --- boto3 -------------------------------------------------------------------------------------------------------


def boto3_download(endpoint: str, digests: dict[str, str], work: Path, *, at_once: bool) -> float:
    """Seconds boto3's ``download_file`` takes to fetch every object into a new folder (checked, then removed)."""
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
        started = time.perf_counter()
        if at_once:
            with ThreadPoolExecutor(max_workers=len(digests)) as pool:
                list(pool.map(download, digests))
        else:
            for key in digests:
                download(key)
        seconds = time.perf_counter() - started
        for key, digest in digests.items():
            if hashlib.blake2b((target / Path(key).name).read_bytes()).hexdigest() != digest:
                raise RuntimeError(f"boto3 downloaded wrong bytes for {key}")
    finally:
        shutil.rmtree(target, ignore_errors=True)
        client.close()
    return seconds


# --- the cache ---------------------------------------------------------------------------------------------------

CacheSetup = Callable[[Path, str], AbstractContextManager[CacheProcess]]


@contextmanager
def one_worker(state_dir: Path, s3_endpoint: str) -> Iterator[CacheProcess]:
    """A new, empty worker reading S3 at ``s3_endpoint`` with ``MOUNT`` on the data set; it takes the load."""
    with CacheProcess(
        state_dir, s3_endpoint=s3_endpoint, mounts={MOUNT: f"s3://{BUCKET}/{PREFIX}"}, disk_capacity="4GiB"
    ) as worker:
        yield worker
    shutil.rmtree(state_dir, ignore_errors=True)


# In the page's order; each has its target in ``_section``.
CACHE_SETUPS: dict[str, CacheSetup] = {ONE_WORKER: one_worker}


def cache_load(entry: CacheProcess, plan: Plan) -> tuple[float, dict[str, Any]]:
    """Seconds from sending ``POST /admin/v1/load`` of the data set to the job's end, and the job's record.

    The end is the job's own ``finished_at`` (the worker runs on this machine, on the same clock), so polling less
    often costs the worker less without blurring the figure. Raises ``RuntimeError`` unless the job succeeded
    having read the whole data set from S3.
    """
    admin = AdminClient(AdminEndpoint.from_url(entry.webhdfs_url, token=entry.token, timeout=60))
    started = time.time()
    job = admin.post("load", {"paths": [MOUNT], "parallelism": plan.parallelism})
    while job["state"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
        job = admin.get(job_route(job["id"]))
    progress = job["progress"]
    if job["state"] != "succeeded" or progress["bytes_from_s3"] != plan.total_bytes:
        raise RuntimeError(f"the load job did not warm the data set: {job}")
    return job["finished_at"] - started, job


def _cache_load_seconds(setup: CacheSetup, work: Path, endpoint: str, plan: Plan, repetition: int) -> float:
    """``cache_load`` on a new ``setup``; raises ``RuntimeError`` if its workers read more or less than the data."""
    with setup(work / f"cache-{repetition}", endpoint) as entry:
        seconds, _ = cache_load(entry, plan)
        s3_read = CacheCounters.scrape(entry.webhdfs_url).s3_bytes_read
    if s3_read != plan.total_bytes:
        raise RuntimeError(f"the worker read {s3_read:.0f} bytes from S3 for a data set of {plan.total_bytes}")
    return seconds


# --- the section ---------------------------------------------------------------------------------------------------


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Time the warmup of the data set by boto3 and by the cache; returns the section."""
    plan = Plan.choose(full, smoke)
    work = fresh_work_dir("warmup", work_dir)
    runs: list[WarmupRun] = []
    with S3Emulator(work / "s3", buckets=[BUCKET]) as s3, S3Model(s3.endpoint_url, work) as model:
        digests = upload(s3, plan)
        measures: dict[str, Callable[[int], float]] = {
            BOTO3: lambda _: boto3_download(model.url, digests, work, at_once=False),
            BOTO3_ALL: lambda _: boto3_download(model.url, digests, work, at_once=True),
        }
        for name, setup in CACHE_SETUPS.items():
            measures[name] = functools.partial(_cache_load_seconds, setup, work, model.url, plan)
        for repetition in range(plan.repetitions):
            order = list(measures) if repetition % 2 == 0 else list(reversed(measures))
            runs += [WarmupRun(name, repetition, measures[name](repetition)) for name in order]
    return _section(plan, runs, model, full=full, img_dir=img_dir)


def _ratios(runs: list[WarmupRun], peer: str, setup: str) -> list[float]:
    """Per repetition: ``peer``'s time over ``setup``'s."""
    by = {(r.setup, r.repetition): r.seconds for r in runs}
    return [by[(peer, r.repetition)] / r.seconds for r in runs if r.setup == setup]


def _section(plan: Plan, runs: list[WarmupRun], model: S3Model, *, full: bool, img_dir: Path) -> Section:
    setups = list(dict.fromkeys(r.setup for r in runs))
    seconds = {s: [r.seconds for r in runs if r.setup == s] for s in setups}
    mb_per_s = {s: [plan.total_bytes / 1e6 / t for t in values] for s, values in seconds.items()}
    ratios = {f"{peer} / {ONE_WORKER}": _ratios(runs, peer, ONE_WORKER) for peer in (BOTO3, BOTO3_ALL)}
    one_worker_ratio = statistics.median(ratios[f"{BOTO3} / {ONE_WORKER}"])
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "run_bytes": RUN_BYTES,
        "s3_model": {"latency_ms": model.latency_ms, "bandwidth_mb_per_s": model.bandwidth_mbps},
        "runs": [asdict(r) for r in runs],
        "seconds": seconds,
        "mb_per_s": mb_per_s,
        "ratios_per_repetition": ratios,
    }
    image = plots.warmup(results, img_dir / "warmup.png")
    rows = [
        [
            name,
            f"{statistics.median(seconds[name]):.2f}",
            f"{min(seconds[name]):.2f} to {max(seconds[name]):.2f}",
            f"{statistics.median(mb_per_s[name]):.0f}",
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
        "one ranged GET each, and writes every page to the disk tier as it arrives. Every download is checked "
        "against the uploaded bytes; the load must have read exactly the data set from S3.\n\n"
        + markdown_table(["setup", "median s", "range s", "median MB/s"], rows, "lrrr")
        + "\n"
        + markdown_table(["ratio (boto3 time / cache time)", "median", "per repetition"], ratio_rows, "lrl")
        + f"\nTarget `warmup_vs_boto3_one_worker`: {BOTO3} over {ONE_WORKER}, the median of the per-repetition "
        f"ratios: **{one_worker_ratio:.2f}x**.\n\n" + f"![{image[0]}]({image[1]})\n"
    )
    return measured_section(
        "warmup",
        "Warmup: a load job against boto3's download_file",
        full=full,
        markdown=text,
        results=results,
        targets={"warmup_vs_boto3_one_worker": round(one_worker_ratio, 2)},
    )
