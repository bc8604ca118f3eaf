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

One worker: a full disk is one worker's, and in a cluster each staged file also waits on a second worker's disk,
which this campaign does not fill.
"""

from __future__ import annotations

import errno
import http.client
import json
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
    """One run: a tmpfs of ``disk_mib`` MiB, ``objects`` objects of ``object_kib`` KiB in S3, ``staged`` staged files
    of ``staged_kib`` KiB written before the disk fills, ``flips`` page files with a bit flipped."""

    disk_mib: int = 8
    objects: int = 24
    object_kib: int = 512
    staged: int = 12
    staged_kib: int = 256
    flips: int = 12
    seed: int = 16


def plans(budget: Budget) -> list[DiskPlan]:
    """A small disk on ``QUICK``; more data, files and flips on a larger budget (``FULL``)."""
    if (budget.cases or 0) > (QUICK.cases or 0):
        return [DiskPlan(disk_mib=32, objects=120, object_kib=1024, staged=60, staged_kib=384, flips=100)]
    return [DiskPlan()]


def disk_faults(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """Every run of ``plans(budget)``, each in a folder of its own under ``work_dir``."""
    work = fresh_work_dir("disk_faults", work_dir or WORK_ROOT / "disk_faults")
    full = budget == FULL
    return [run(plan, work / f"run-{n}", full=full) for n, plan in enumerate(plans(budget))]


def run(plan: DiskPlan, work: Path, *, full: bool = False) -> GuaranteeResult:
    """One run of ``plan`` under ``work``; its counts and whether the guarantee held."""
    started = time.monotonic()
    rng = random.Random(plan.seed)
    with S3Emulator(work / "s3", buckets=[BUCKET]) as s3:
        client = s3.client()
        keys = [f"lake/data/part-{n:04d}.bin" for n in range(plan.objects)]
        for key in keys:
            client.put_object(Bucket=BUCKET, Key=key, Body=rng.randbytes(plan.object_kib * 1024))
        worker = CacheProcess(
            work / "worker",
            s3_endpoint=s3.endpoint_url,
            mounts={MOUNT: f"s3://{BUCKET}/lake"},
            overrides=WORKER_CONFIG,
            memory_capacity="2MiB",
            disk_capacity="4GiB",  # far more than the filesystem holds: the disk fills before the cache sees pressure
        )
        with small_filesystem(worker.data_dir, plan.disk_mib * 2**20):
            worker.start()
            checks = DiskRun(plan, worker, client, keys, rng)
            try:
                checks.full_disk()
                checks.rotten_pages()
            finally:
                worker.stop()
    return GuaranteeResult.judged(
        "disk faults, 1 worker",
        GUARANTEE,
        headline_first(checks.counts, HEADLINE),
        checks.violations,
        campaign="disk_faults",
        full=full,
        started=started,
    )


class DiskRun:
    """The checks of one run on a started worker whose disk tier is the small filesystem; ``counts`` and
    ``violations`` are what they found."""

    def __init__(self, plan: DiskPlan, worker: CacheProcess, s3: S3Client, keys: list[str], rng: random.Random) -> None:
        self.plan = plan
        self.worker = worker
        self.s3 = s3
        self.keys = keys
        self.rng = rng
        self.counts: dict[str, int] = {"disk_bytes": plan.disk_mib * 2**20}
        self.violations: list[str] = []

    def full_disk(self) -> None:
        """Steps 1 to 3: staged writes acknowledged, the disk filled, reads and writes on it, room again."""
        plan, worker, s3, keys, rng = self.plan, self.worker, self.s3, self.keys, self.rng
        counts, violations = self.counts, self.violations
        url = worker.webhdfs_url
        acknowledged: dict[str, bytes] = {}
        for n in range(plan.staged):
            body = rng.randbytes(plan.staged_kib * 1024)
            status, _ = webhdfs(url, "PUT", f"{STAGED}/part-{n:04d}", "CREATE", body, overwrite="true")
            if status == 201:
                acknowledged[f"{STAGED}/part-{n:04d}"] = body
        counts["staged_acknowledged"] = len(acknowledged)
        if len(acknowledged) < plan.staged:
            violations.append(
                f"only {len(acknowledged)} of {plan.staged} staged files fitted before the disk was filled"
            )

        filler = worker.data_dir / "filler"
        counts["filler_bytes"] = fill(filler)
        reads = [check_read(url, s3, BUCKET, key, "/" + key) for key in keys]
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
            status, answer = webhdfs(url, method, path, op, body, **params)
            if status == 503 and refusal(status, answer) == RETRIABLE:
                refused[name] = (path, body, params)
            else:
                violations.append(f"{name} on a full disk answered {status} {answer[:200]!r}, not a RetriableException")
        counts["full_disk_writes_refused_retriable"] = len(refused)
        counts["staged_files_intact_while_full"] = _intact(url, acknowledged, violations, "while the disk was full")

        filler.unlink()
        retries = 0
        for name, (path, body, params) in refused.items():
            op = "APPEND" if "APPEND" in name else "CREATE"
            body = body[: plan.staged_kib * 1024]  # the client retries once room is freed; a size that fits now
            done, attempts = retrying(url, "POST" if op == "APPEND" else "PUT", path, op, body, params)
            retries += attempts - 1
            if not done:
                violations.append(f"{name} still refused after {attempts} attempts with room again")
            elif op == "APPEND":
                acknowledged[path] = acknowledged[path] + body
            elif path.startswith(STAGED):
                acknowledged[path] = body
        counts["writes_retried_with_room"] = len(refused)
        counts["staged_files_intact_after"] = _intact(url, acknowledged, violations, "once room was freed")

        status, answer = webhdfs(url, "PUT", STAGED, "RENAME", destination=PUBLISHED)
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
        """Step 4: bits flipped in page files on disk, then reads in the same process and after a restart."""
        plan, worker, s3, rng = self.plan, self.worker, self.s3, self.rng
        counts, violations = self.counts, self.violations
        url = worker.webhdfs_url
        # every object under the mount: the data, and the files written through the cache (their pages cached as
        # they were written)
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/").get("Contents", [])]
        for key in keys:  # their pages on disk, as far as the small filesystem holds them
            check_read(url, s3, BUCKET, key, "/" + key)
        pages = sorted((worker.data_dir / "pages").rglob("[0-9]*.*"))
        flipped = rng.sample(pages, min(plan.flips, len(pages)))
        for page in flipped:
            flip_bit(page, rng)
        counts["pages_on_disk"] = len(pages)
        counts["pages_flipped"] = len(flipped)
        if not flipped:
            violations.append("no page was on disk to flip a bit in")

        for when in ("in the same process", "after a restart"):
            outcomes = [check_read(url, s3, BUCKET, key, "/" + key) for key in keys]
            for offset in (0, PAGE // 2, 3 * PAGE + 5):  # ranges within pages, not only whole objects
                outcomes += [check_read(url, s3, BUCKET, key, "/" + key, offset, PAGE) for key in keys]
            slug = when.replace(" ", "_")
            counts[f"rot_reads_{slug}"] = len(outcomes)
            counts["wrong_reads"] = counts.get("wrong_reads", 0) + sum(o in WRONG for o in outcomes)
            violations += [f"a read {when} after bits flipped was {o}" for o in set(outcomes) if o != "same"]
            counts[f"corrupt_pages_counted_{slug}"] = int(sum(v for _, v in metric_samples(url, CORRUPT_PAGES)))
            if when == "in the same process":
                counts["pages_rotten_at_restart"] = rot_again(flipped, rng)
                worker.stop()
                worker.start()
        if flipped and not counts["corrupt_pages_counted_in_the_same_process"]:
            violations.append(f"{len(flipped)} page files rotten, yet lakecache_corrupt_pages_total counted none")
        if counts["corrupt_pages_counted_after_a_restart"] != counts["pages_rotten_at_restart"]:
            # after a restart no page is in memory: every rotten one is read from disk, and must be caught
            violations.append(
                f"{counts['pages_rotten_at_restart']} page files rotten at the restart, "
                f"{counts['corrupt_pages_counted_after_a_restart']} caught after it"
            )


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


def _intact(url: str, acknowledged: dict[str, bytes], violations: list[str], when: str) -> int:
    intact = 0
    for path, body in acknowledged.items():
        try:
            status, served = webhdfs(url, "GET", path, "OPEN")
        except (OSError, http.client.HTTPException) as exc:
            status, served = 0, str(exc).encode()
        if status == 200 and served == body:
            intact += 1
        else:
            violations.append(f"acknowledged staged {path} did not read back whole {when}: {status}")
    return intact


def retrying(
    url: str, method: str, path: str, op: str, body: bytes, params: dict[str, str], attempts: int = 5
) -> tuple[bool, int]:
    """Send a write again while it answers a ``RetriableException``, with a growing pause, as Hadoop's client does;
    whether it succeeded and the attempts it took."""
    for attempt in range(1, attempts + 1):
        status, answer = webhdfs(url, method, path, op, body, **params)
        if status in (200, 201):
            return True, attempt
        if refusal(status, answer) != RETRIABLE:
            return False, attempt
        time.sleep(0.2 * attempt)
    return False, attempts
