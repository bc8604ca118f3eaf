"""Disk faults: the worker's disk fills up and its pages rot, and still no client is misled and nothing acknowledged
is lost.

The worker's disk tier (pages, ``staging/``, ``spool/``) is a filesystem of the campaign's own: a tmpfs of a few
megabytes mounted on the tier's folder (``mount -t tmpfs -o size=...``: it needs root, as ``make chaos`` and CI
have), far smaller than the tier's configured capacity, so that the cache meets a full disk before its own
accounting sees any pressure. Then:

1. **acknowledged staged writes**: files are CREATEd under ``_temporary`` (two-step, as Hadoop's client writes)
   while there is room; each 201 is remembered with its bytes;
2. **full**: a filler file takes the filesystem's last byte. Every object is read through the cache (its pages do
   not fit on disk: reads must fall back to S3 and be S3's bytes); new staged and write-through CREATEs and an
   APPEND must answer 503 ``RemoteException`` ``org.apache.hadoop.ipc.RetriableException`` (what Hadoop's client,
   and its failover policy in a cluster, retry), never a 500; every acknowledged staged file must still read back
   whole;
3. **room again**: the filler goes; the refused writes are sent again as a client retrying a
   ``RetriableException`` does, and succeed; the staged files are published by a RENAME, and S3 then holds every
   acknowledged byte;
4. **rot**: every object is read so its pages are on disk, then one bit is flipped in some page files; every read
   after that, in the same process and after a restart, must be S3's bytes, the rotten pages counted in
   ``lakecache_corrupt_pages_total`` and fetched again.

Run on one worker and on a three-worker cluster (Redis, staged files on two workers). In the cluster each worker's
disk tier is a tmpfs of its own and every one of them is filled (a cluster-wide full disk); each request goes to a
worker picked at random (a seeded rng of its own), so staged files are written, read back and published through
any worker (their home relays them), and reads go to the blocks' owners (a WebHDFS redirect) which fetch the other
blocks of an object (blocks of 256 KiB: two per object) from their owners. Bits are flipped in page files on every
worker's disk, the counts are ``lakecache_corrupt_pages_total`` summed over the workers, and the restart is of
every worker at once, waiting for them to route by the ring of all three again.

One check is weaker in the cluster: on one worker every page file rotten at the restart is read again after it (and
must be counted exactly); in the cluster reads go to the blocks' owners, and a page cached on a worker that does not
own its block (a page written through a worker whose owner could not take it, its disk being full) is not read
again. There the sum counted after the restart must be at least one and at most the pages rotten at the restart
(each caught once, then fetched again whole), and every read must still be S3's bytes.
"""

from __future__ import annotations

import errno
import http.client
import json
import math
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cache_cluster import QUICK_MEMBERSHIP, Ring, cache_workers, restart_all
from bench.measured import fresh_work_dir
from bench.reliability.campaign import FULL, QUICK, Budget, GuaranteeResult
from bench.reliability.served import WRONG, check_read, headline_first, metric_samples, refusal, webhdfs
from cache_service.page_store.identity import checksum
from infra.cache_process import REPO_ROOT, CacheProcess
from infra.s3_emulator import S3Emulator

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WORK_ROOT = REPO_ROOT / ".local" / "chaos"
BUCKET = "disk"
MOUNT = "/lake"
STAGED = f"{MOUNT}/job/_temporary/0"
PUBLISHED = f"{MOUNT}/job/out"
GUARANTEE = (
    "on a full disk reads fall back to S3 and writes answer a RetriableException, nothing acknowledged is lost, and "
    "rotten pages are never served"
)
RETRIABLE = ("RetriableException", "org.apache.hadoop.ipc.RetriableException")
PAGE = 64 * 1024
WORKER_CONFIG = {"store": {"page_size": "64KiB"}}
CLUSTER_CONFIG = {
    **WORKER_CONFIG,
    "cluster": {"block_size": "256KiB", **QUICK_MEMBERSHIP},
}
CORRUPT_PAGES = "lakecache_corrupt_pages_total"
HEADLINE = (
    "full_disk_reads_from_s3_ok",
    "full_disk_writes_refused_retriable",
    "staged_acknowledged",
    "acknowledged_in_s3",
    "pages_flipped",
    "wrong_reads",
)
"""The counts the report's summary shows first."""


@dataclass(frozen=True)
class DiskPlan:
    """One run: ``workers`` workers, each on a tmpfs of ``disk_mib`` MiB, ``objects`` objects of ``object_kib`` KiB in
    S3, ``staged`` staged files of ``staged_kib`` KiB written before the disks fill, ``flips`` page files with a bit
    flipped (spread evenly over the workers)."""

    workers: int = 1
    disk_mib: int = 8
    objects: int = 24
    object_kib: int = 512
    staged: int = 12
    staged_kib: int = 256
    flips: int = 12
    seed: int = 16

    @property
    def label(self) -> str:
        """``1 worker``, ``3 workers``."""
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}"


def plans(budget: Budget) -> list[DiskPlan]:
    """One worker and three, small disks on ``QUICK`` (fewer objects and files on three, for time); more data,
    files and flips on a larger budget (``FULL``)."""
    if (budget.cases or 0) > (QUICK.cases or 0):
        big = DiskPlan(disk_mib=32, objects=120, object_kib=1024, staged=60, staged_kib=384, flips=100)
        return [big, DiskPlan(3, disk_mib=32, objects=120, object_kib=1024, staged=60, staged_kib=384, flips=102)]
    return [DiskPlan(), DiskPlan(3, objects=12, staged=6, flips=9)]


def disk_faults(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """Every run of ``plans(budget)``, each in a folder of its own under ``work_dir``."""
    work = fresh_work_dir("disk_faults", work_dir or WORK_ROOT / "disk_faults")
    full = budget == FULL
    return [run(plan, work / plan.label.replace(" ", "_"), full=full) for plan in plans(budget)]


def run(plan: DiskPlan, work: Path, *, full: bool = False) -> GuaranteeResult:
    """One run of ``plan`` under ``work``; its counts and whether the guarantee held."""
    started = time.monotonic()
    rng = random.Random(plan.seed)
    with S3Emulator(work / "s3", buckets=[BUCKET]) as s3:
        client = s3.client()
        keys = [f"lake/data/part-{n:04d}.bin" for n in range(plan.objects)]
        for key in keys:
            client.put_object(Bucket=BUCKET, Key=key, Body=rng.randbytes(plan.object_kib * 1024))

        def own_disk(worker: CacheProcess) -> AbstractContextManager[Path]:
            return small_filesystem(worker.data_dir, plan.disk_mib * 2**20)

        with cache_workers(
            work,
            plan.workers,
            s3_endpoint=s3.endpoint_url,
            mounts={MOUNT: f"s3://{BUCKET}/lake"},
            overrides=CLUSTER_CONFIG if plan.workers > 1 else WORKER_CONFIG,
            around=own_disk,
            memory_capacity="2MiB",
            disk_capacity="4GiB",  # far more than the filesystem holds: the disk fills before the cache sees pressure
        ) as (workers, ring):
            checks = DiskRun(plan, workers, ring, client, keys, rng)
            checks.full_disk()
            checks.rotten_pages()
    return GuaranteeResult.judged(
        f"disk faults, {plan.label}",
        GUARANTEE,
        headline_first(checks.counts, HEADLINE),
        checks.violations,
        campaign="disk_faults",
        full=full,
        started=started,
    )


class DiskRun:
    """The checks of one run on started workers whose disk tiers are the small filesystems; ``counts`` and
    ``violations`` are what they found. Each request goes to a worker drawn from ``picks`` (seeded apart from
    ``rng``, which draws the bytes, so the one-worker run draws the same bytes as before)."""

    def __init__(
        self, plan: DiskPlan, workers: list[CacheProcess], ring: Ring, s3: S3Client, keys: list[str], rng: random.Random
    ) -> None:
        self.plan = plan
        self.workers = workers
        self.ring = ring
        self.s3 = s3
        self.keys = keys
        self.rng = rng
        self.picks = random.Random(plan.seed + 1)
        self.counts: dict[str, int] = {"disk_bytes": plan.disk_mib * 2**20}
        self.violations: list[str] = []

    def url(self) -> str:
        """The WebHDFS URL of a worker picked at random: the next request goes there."""
        return self.picks.choice(self.workers).webhdfs_url

    def read(self, key: str, offset: int = 0, length: int | None = None) -> str:
        """``check_read`` of ``key`` (under the mount at ``/lake``) through a random worker."""
        return check_read(self.url(), self.s3, BUCKET, key, "/" + key, offset, length)

    def full_disk(self) -> None:
        """Steps 1 to 3: staged writes acknowledged, the disk filled, reads and writes on it, room again."""
        plan, s3, keys, rng = self.plan, self.s3, self.keys, self.rng
        counts, violations = self.counts, self.violations
        acknowledged: dict[str, bytes] = {}
        for n in range(plan.staged):
            body = rng.randbytes(plan.staged_kib * 1024)
            status, _ = webhdfs(self.url(), "PUT", f"{STAGED}/part-{n:04d}", "CREATE", body, overwrite="true")
            if status == 201:
                acknowledged[f"{STAGED}/part-{n:04d}"] = body
        counts["staged_acknowledged"] = len(acknowledged)
        if len(acknowledged) < plan.staged:
            violations.append(
                f"only {len(acknowledged)} of {plan.staged} staged files fitted before the disk was filled"
            )

        fillers = [worker.data_dir / "filler" for worker in self.workers]
        counts["filler_bytes"] = sum(fill(filler) for filler in fillers)
        reads = [self.read(key) for key in keys]
        counts["full_disk_reads"] = len(reads)
        counts["full_disk_reads_from_s3_ok"] = reads.count("same")
        violations += [f"a read on the full disk was {o}" for o in reads if o != "same"][:5]

        refused: dict[str, tuple[str, bytes, dict[str, str]]] = {}
        writes = {
            "staged CREATE": (f"{STAGED}/late-0", "CREATE", {"overwrite": "true"}),
            "write-through CREATE": (f"{MOUNT}/direct/late-0", "CREATE", {"overwrite": "true"}),
            "staged APPEND": (next(iter(acknowledged), f"{STAGED}/late-1"), "APPEND", {}),
        }
        for name, (path, op, params) in writes.items():
            body = rng.randbytes(2 * plan.disk_mib * 2**20 if op == "CREATE" else 64 * 1024)
            method = "PUT" if op == "CREATE" else "POST"
            status, answer = webhdfs(self.url(), method, path, op, body, **params)
            if status == 503 and refusal(status, answer) == RETRIABLE:
                refused[name] = (path, body, params)
            else:
                violations.append(f"{name} on a full disk answered {status} {answer[:200]!r}, not a RetriableException")
        counts["full_disk_writes_refused_retriable"] = len(refused)
        counts["staged_files_intact_while_full"] = self.intact(acknowledged, "while the disk was full")

        for filler in fillers:
            filler.unlink()
        retries = 0
        for name, (path, body, params) in refused.items():
            op = "APPEND" if "APPEND" in name else "CREATE"
            body = body[: plan.staged_kib * 1024]  # the client retries once room is freed; a size that fits now
            done, attempts = retrying(self.url, "POST" if op == "APPEND" else "PUT", path, op, body, params)
            retries += attempts - 1
            if not done:
                violations.append(f"{name} still refused after {attempts} attempts with room again")
            elif op == "APPEND":
                acknowledged[path] = acknowledged[path] + body
            elif path.startswith(STAGED):
                acknowledged[path] = body
        counts["writes_retried_with_room"] = len(refused)
        counts["staged_files_intact_after"] = self.intact(acknowledged, "once room was freed")

        status, answer = webhdfs(self.url(), "PUT", STAGED, "RENAME", destination=PUBLISHED)
        if status != 200 or json.loads(answer or b"{}").get("boolean") is not True:
            violations.append(f"publishing the staged files answered {status} {answer[:200]!r}")
        published = 0
        for path, body in acknowledged.items():
            key = "lake" + PUBLISHED.removeprefix(MOUNT) + path.removeprefix(STAGED)
            try:
                in_s3 = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                in_s3 = None
            if in_s3 == body:
                published += 1
            else:
                violations.append(f"acknowledged {path} is not in S3 as written after its publishing RENAME")
        counts["acknowledged_in_s3"] = published

    def rotten_pages(self) -> None:
        """Step 4: bits flipped in page files on every worker's disk, then reads in the same processes and after a
        restart of every worker."""
        plan, s3, rng = self.plan, self.s3, self.rng
        counts, violations = self.counts, self.violations
        # every object under the mount: the data, and the files written through the cache (their pages cached as
        # they were written)
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/").get("Contents", [])]
        for key in keys:  # their pages on disk, as far as the small filesystems hold them
            self.read(key)
        flipped: list[Path] = []
        each = math.ceil(plan.flips / len(self.workers))
        for n, worker in enumerate(self.workers):
            pages = sorted((worker.data_dir / "pages").rglob("[0-9]*.*"))
            counts["pages_on_disk"] = counts.get("pages_on_disk", 0) + len(pages)
            if not pages:
                violations.append(f"no page was on worker {n}'s disk to flip a bit in")
            flipped += rng.sample(pages, min(each, len(pages)))
        for page in flipped:
            flip_bit(page, rng)
        counts["pages_flipped"] = len(flipped)

        for when in ("in the same process", "after a restart"):
            outcomes = [self.read(key) for key in keys]
            for offset in (0, PAGE // 2, 3 * PAGE + 5):  # ranges within pages (and across blocks), not only whole
                outcomes += [self.read(key, offset, PAGE) for key in keys]
            slug = when.replace(" ", "_")
            counts[f"rot_reads_{slug}"] = len(outcomes)
            counts["wrong_reads"] = counts.get("wrong_reads", 0) + sum(o in WRONG for o in outcomes)
            violations += [f"a read {when} after bits flipped was {o}" for o in set(outcomes) if o != "same"]
            counts[f"corrupt_pages_counted_{slug}"] = sum(
                int(value) for worker in self.workers for _, value in metric_samples(worker.webhdfs_url, CORRUPT_PAGES)
            )
            if when == "in the same process":
                counts["pages_rotten_at_restart"] = rot_again(flipped, rng)
                restart_all(self.workers, kill=False)
                self.ring(self.workers)
        rotten, caught = counts["pages_rotten_at_restart"], counts["corrupt_pages_counted_after_a_restart"]
        if flipped and not counts["corrupt_pages_counted_in_the_same_process"]:
            violations.append(f"{len(flipped)} page files rotten, yet lakecache_corrupt_pages_total counted none")
        if len(self.workers) == 1 and caught != rotten:
            # after a restart no page is in memory: every rotten one is read from disk, and must be caught
            violations.append(f"{rotten} page files rotten at the restart, {caught} caught after it")
        elif len(self.workers) > 1 and not 0 < caught <= rotten:
            # reads reach only the owners' pages (see the module's docstring), each caught once
            violations.append(f"{rotten} page files rotten at the restart, {caught} caught after it (1 to {rotten})")

    def intact(self, acknowledged: dict[str, bytes], when: str) -> int:
        """How many ``acknowledged`` staged files read back whole, each through a random worker; a violation for
        each other one."""
        intact = 0
        for path, body in acknowledged.items():
            try:
                status, served = webhdfs(self.url(), "GET", path, "OPEN")
            except (OSError, http.client.HTTPException) as exc:
                status, served = 0, str(exc).encode()
            if status == 200 and served == body:
                intact += 1
            else:
                self.violations.append(f"acknowledged staged {path} did not read back whole {when}: {status}")
        return intact


# --- helpers -----------------------------------------------------------------------------------------------------


@contextmanager
def small_filesystem(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``path`` (created) for the block; unmounted after.

    Raises ``RuntimeError`` saying why when it cannot be mounted (mounting needs root).
    """
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a {size}-byte tmpfs on {path} (run as root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> int:
    """Write zeros to ``path`` until its filesystem is full; returns the bytes written."""
    written = 0
    chunk = bytes(64 * 1024)
    with open(path, "wb", buffering=0) as out:
        for size in (len(chunk), 4096, 1):
            while True:
                try:
                    written += out.write(chunk[:size]) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return written


def flip_bit(page: Path, rng: random.Random) -> None:
    """Flip one random bit of the file ``page``, in place."""
    data = bytearray(page.read_bytes())
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        page.write_bytes(bytes(data))


def rot_again(pages: list[Path], rng: random.Random) -> int:
    """Flip a bit again in those of ``pages`` that are whole (refetched under the same name, ``<index>.<checksum>``)
    and leave the still rotten ones be; returns how many are rotten now (a refetched page that did not fit on the
    disk again is gone)."""
    rotten = 0
    for page in pages:
        if not page.exists():
            continue
        if checksum(page.read_bytes()) == int(page.name.split(".")[1], 16):
            flip_bit(page, rng)
        rotten += 1
    return rotten


def retrying(
    url: Callable[[], str], method: str, path: str, op: str, body: bytes, params: dict[str, str], attempts: int = 5
) -> tuple[bool, int]:
    """Send a write again while it answers a ``RetriableException``, with a growing pause, as Hadoop's client does
    (each attempt to the worker ``url()`` names: its failover policy may pick another); whether it succeeded and the
    attempts it took."""
    for attempt in range(1, attempts + 1):
        status, answer = webhdfs(url(), method, path, op, body, **params)
        if status in (200, 201):
            return True, attempt
        if refusal(status, answer) != RETRIABLE:
            return False, attempt
        time.sleep(0.2 * attempt)
    return False, attempts
