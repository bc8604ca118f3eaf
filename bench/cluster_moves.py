"""Scaling a warm cluster: bytes read from S3 when re-reading the warm data set after a worker joins and after one
is drained.

Each repetition starts a new three-worker cluster (``CacheCluster``, reading S3 through the latency model), warms a
data set of random objects with one load job, then:

1. **join**: starts a fourth worker with the same config and token and waits until every worker sees it active; then
   re-reads every object whole through the new worker's S3 API (checking its bytes);
2. **drain**: ``POST /admin/v1/cluster/drain`` of one of the first three (asked of another), waits for the job to
   succeed and for the others to see three active workers; then re-reads every object through a staying worker.

Each figure is what every worker together read from S3 during the re-read, over the data set's size. Without
hand-off, every block whose owner changed would be a miss read from S3: that share is computed from the cluster's
own block locations (``GETFILEBLOCKLOCATIONS`` names each block's owner first) before and after, not measured.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cache_cluster import CacheCluster
from bench.measured import upload_random
from cache_service.admin_client import AdminClient, AdminEndpoint, job_route
from infra.cache_metrics import CacheCounters
from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring, worker_id
from infra.s3_emulator import S3Emulator, s3_client

BUCKET = "lake"
PREFIX = "moves"
MOUNT = "/moves"
JOB_TIMEOUT = 600.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class MovesPlan:
    """The data set (``objects`` of ``object_bytes``) and the repetitions."""

    objects: int
    object_bytes: int
    repetitions: int

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> MovesPlan:
        """Smoke: 6 objects of 1 MiB, once. Quick: 32 of 8 MiB (256 MiB), 3 times. Full: 64 of 16 MiB (1 GiB), 3.

        Every object is one block at the default block size (64 MiB): 32 or 64 blocks over 3 or 4 workers.
        """
        if smoke:
            return cls(objects=6, object_bytes=2**20, repetitions=1)
        if full:
            return cls(objects=64, object_bytes=16 * 2**20, repetitions=3)
        return cls(objects=32, object_bytes=8 * 2**20, repetitions=3)

    @property
    def total_bytes(self) -> int:
        """The data set's size."""
        return self.objects * self.object_bytes


@dataclass(frozen=True)
class MoveRun:
    """One join or drain and the re-read after it."""

    event: str  # "join" or "drain"
    repetition: int
    s3_bytes: float
    """Read from S3 by every worker during the re-read."""
    moved_bytes: int
    """Bytes of the blocks whose owner changed: what the re-read would read from S3 without hand-off."""
    seconds: float
    """join: from starting the worker until every worker sees it active; drain: the drain job's own duration."""
    message: str
    """The drain job's last message (what it handed over), empty for a join."""


def upload(s3: S3Emulator, plan: MovesPlan) -> dict[str, str]:
    """Write the data set into the emulator; returns each key's digest."""
    return upload_random(s3, BUCKET, PREFIX, plan.objects, plan.object_bytes)


def block_owners(worker: CacheProcess, keys: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """Each block's owner (``host:port``) and length, by (key, offset), as ``worker`` sees them."""
    owners = {}
    for key in keys:
        url = f"{worker.webhdfs_url}/webhdfs/v1/{key}?op=GETFILEBLOCKLOCATIONS&user.name=bench"
        with _DIRECT.open(url, timeout=30) as response:
            locations = json.load(response)["BlockLocations"]["BlockLocation"]
        for block in locations:
            owners[(key, int(block["offset"]))] = (str(block["names"][0]), int(block["length"]))
    return owners


def moved(before: dict[tuple[str, int], tuple[str, int]], after: dict[tuple[str, int], tuple[str, int]]) -> int:
    """Bytes of the blocks whose owner differs between ``before`` and ``after``."""
    return sum(length for block, (owner, length) in after.items() if before[block][0] != owner)


def reread(entry: CacheProcess, cluster: CacheCluster, digests: dict[str, str]) -> float:
    """Read every object whole through ``entry``'s S3 API, checking its bytes; returns what every running worker
    read from S3 meanwhile. Raises ``RuntimeError`` on wrong bytes."""
    running = [w for w in cluster.workers if w.running]
    before = sum(CacheCounters.scrape(w.webhdfs_url).s3_bytes_read for w in running)
    client = s3_client(entry.s3_url)
    for key, digest in digests.items():
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if hashlib.blake2b(body).hexdigest() != digest:
            raise RuntimeError(f"worker {entry.webhdfs_url} served wrong bytes for {key}")
    client.close()
    return sum(CacheCounters.scrape(w.webhdfs_url).s3_bytes_read for w in running) - before


def _wait(admin: AdminClient, job: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while job["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job['id']} still runs after {JOB_TIMEOUT:.0f} s: {job}")
        time.sleep(0.1)
        if url is None:
            job = admin.get(job_route(job["id"]))
        else:
            with _DIRECT.open(url, timeout=10) as response:
                job = json.load(response)
    if job["state"] != "succeeded":
        raise RuntimeError(f"job {job['id']} ended {job['state']}: {job}")
    return job


def _admin(worker: CacheProcess) -> AdminClient:
    return AdminClient(AdminEndpoint.from_url(worker.webhdfs_url, token=worker.token, timeout=60))


def one_repetition(work: Path, s3_endpoint: str, digests: dict[str, str], repetition: int) -> list[MoveRun]:
    """Warm a new cluster, join a worker and re-read, drain one and re-read."""
    keys = list(digests)
    cluster = CacheCluster(
        work / f"moves-{repetition}",
        3,
        s3_endpoint=s3_endpoint,
        mounts={MOUNT: f"s3://{BUCKET}/{PREFIX}"},
        overrides={"metadata": {"sync_interval": "1h"}},
        disk_capacity="4GiB",
    )
    with cluster:
        first = cluster.workers[0]
        admin = _admin(first)
        _wait(admin, admin.post("load", {"paths": [MOUNT]}))
        owners = block_owners(first, keys)

        began = time.monotonic()
        joined = cluster.join()
        join_seconds = time.monotonic() - began
        grown = block_owners(joined, keys)
        join = MoveRun("join", repetition, reread(joined, cluster, digests), moved(owners, grown), join_seconds, "")

        leaving, staying = cluster.workers[1], [w for w in cluster.workers if w is not cluster.workers[1]]
        answer = admin.post("cluster/drain", {"worker": worker_id(leaving)})
        job = _wait(admin, answer, answer["job_url"])
        wait_for_ring(staying, len(staying))
        shrunk = block_owners(first, keys)
        drain_seconds = float(job["finished_at"]) - float(job["started_at"])
        drain = MoveRun(
            "drain",
            repetition,
            reread(first, cluster, digests),
            moved(grown, shrunk),
            drain_seconds,
            str(job.get("message", "")),
        )
    return [join, drain]


def measure(full: bool, smoke: bool, work: Path, s3: S3Emulator, s3_endpoint: str) -> tuple[MovesPlan, list[MoveRun]]:
    """Every repetition's join and drain."""
    plan = MovesPlan.choose(full, smoke)
    digests = upload(s3, plan)
    runs = []
    for repetition in range(plan.repetitions):
        runs += one_repetition(work, s3_endpoint, digests, repetition)
    return plan, runs
