"""Crash consistency: a history of acknowledged writes survives SIGKILLs of workers, byte for byte.

Writers (``writers.Writer``) write through the cache's WebHDFS and S3 ports while a killer SIGKILLs a random worker
at random moments and restarts it on the same disk tier (same identity), and once SIGKILLs every worker at the same
moment. Then, with every worker up again:

- every acknowledged write is in S3 byte for byte (``history.judge``), or, for a staged file whose publishing RENAME
  was not acknowledged, is read back from the cache at a staged path it may be at, published by a RENAME and then
  found in S3 byte for byte (``recovered from staging``);
- nothing unacknowledged is half-visible: every object holds exactly one body some client sent, and a staged file a
  CREATE left unacknowledged is absent or whole;
- the cache serves what S3 holds: objects read back through the workers' S3 ports match S3.

Run on one worker and on a three-worker cluster (Redis, staged files on two workers).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cache_cluster import QUICK_MEMBERSHIP, Ring, cache_workers, restart_all
from bench.measured import fresh_work_dir
from bench.reliability.campaign import FULL, QUICK, Budget, GuaranteeResult
from bench.reliability.history import History, digest, judge
from bench.reliability.writers import MOUNT, Endpoint, UnavailableError, Writer, read_file, webhdfs
from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator, s3_client

ROOT = Path(__file__).resolve().parents[2]
WORK_ROOT = ROOT / ".local" / "chaos"
BUCKET = "chaos"
GUARANTEE = (
    "every acknowledged write is in S3 or publishable from the cache, byte for byte; nothing unacknowledged is "
    "half-visible"
)
CLUSTER = {"cluster": {"block_size": "1MiB", **QUICK_MEMBERSHIP}}
MEMORY, DISK = "64MiB", "2GiB"
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


@dataclass(frozen=True)
class CrashPlan:
    """One run: ``workers`` workers, ``writers`` clients writing until ``acknowledged`` writes were acknowledged
    (within ``seconds``), ``kills`` SIGKILLs (one of them of every worker at once) at random points of the history,
    and ``read_back`` objects read through the cache at the end."""

    workers: int
    writers: int = 4
    acknowledged: int = 1000
    kills: int = 6
    seconds: float = 240.0
    read_back: int = 200
    seed: int = 0

    @property
    def label(self) -> str:
        """``one worker``, ``three workers``..."""
        return "one worker" if self.workers == 1 else f"{_NUMBERS.get(self.workers, self.workers)} workers"


def plans(budget: Budget) -> list[CrashPlan]:
    """One worker and three: at least 1,000 acknowledged writes each (any budget but ``FULL``), ten times as many
    on ``FULL``."""
    if budget == FULL:
        return [
            CrashPlan(1, writers=6, acknowledged=10_000, kills=40, seconds=3600, read_back=2000),
            CrashPlan(3, writers=6, acknowledged=10_000, kills=40, seconds=3600, read_back=2000),
        ]
    return [CrashPlan(1), CrashPlan(3)]


def crash_consistency(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """Both runs of ``plans(budget)``, each in a folder of its own under ``work_dir``."""
    work = fresh_work_dir("crash_consistency", work_dir or WORK_ROOT / "crash_consistency")
    full = budget == FULL
    return [run(plan, work / plan.label.replace(" ", "_"), full=full) for plan in plans(budget)]


@dataclass
class Kills:
    """What the killer did."""

    single: int = 0
    whole: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Workers that did not come back (or a cluster that did not agree again) after a kill."""


def run(plan: CrashPlan, work: Path, *, full: bool = False) -> GuaranteeResult:
    """One run of ``plan`` under ``work``; returns its counts and whether the guarantee held."""
    started = time.monotonic()
    with S3Emulator(work / "s3", buckets=[BUCKET]) as s3, _workers(plan, work, s3.endpoint_url) as (workers, ring):
        history, kills = History(), Kills()
        endpoints = [Endpoint(w.webhdfs_url, w.s3_url) for w in workers]
        stop_writing, stop_killing = threading.Event(), threading.Event()
        writers = [Writer(n, endpoints, BUCKET, history, stop_writing) for n in range(plan.writers)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        killer = threading.Thread(target=_kill, args=(plan, workers, ring, history, kills, stop_killing), daemon=True)
        for thread in [*threads, killer]:
            thread.start()
        deadline = started + plan.seconds
        while (
            time.monotonic() < deadline
            and not kills.failures
            and not (
                history.acknowledged >= plan.acknowledged and kills.whole and kills.single + kills.whole >= plan.kills
            )
        ):
            time.sleep(0.2)
        stop_killing.set()
        killer.join()
        stop_writing.set()
        for thread in threads:
            thread.join()
        for worker in workers:
            if not worker.running:
                worker.start()
        ring(workers)
        counts, violations = _verify(plan, history, kills, workers, s3)
    if counts["acknowledged"] < plan.acknowledged:
        violations.insert(0, f"only {counts['acknowledged']} writes acknowledged of {plan.acknowledged} wanted")
    if not kills.whole:
        violations.insert(0, "the whole cluster was never killed")
    violations[:0] = kills.failures
    return GuaranteeResult.judged(
        f"crash consistency, {plan.label}",
        GUARANTEE,
        counts,
        violations,
        campaign="crash_consistency",
        full=full,
        started=started,
    )


@contextmanager
def _workers(plan: CrashPlan, work: Path, s3_endpoint: str) -> Iterator[tuple[list[CacheProcess], Ring]]:
    """The workers of ``plan``, started, and their ``Ring``."""
    with cache_workers(
        work,
        plan.workers,
        s3_endpoint=s3_endpoint,
        mounts={MOUNT: f"s3://{BUCKET}/lake"},
        overrides=CLUSTER if plan.workers > 1 else None,
        memory_capacity=MEMORY,
        disk_capacity=DISK,
    ) as started:
        yield started


def _kill(
    plan: CrashPlan, workers: list[CacheProcess], ring: Ring, history: History, kills: Kills, stop: threading.Event
) -> None:
    """SIGKILL a random worker and restart it at ``plan.kills`` random points of the history (each when that many
    writes have been acknowledged, plus a random fraction of a second), and once, a third to a half of the way, every
    worker at the same moment; until ``stop``. A worker that does not come back ends the killing, as a failure."""
    rng = random.Random(plan.seed)
    points = [(rng.uniform(0.05, 0.95) * plan.acknowledged, False) for _ in range(plan.kills - 1)]
    for point, everyone in sorted([*points, (rng.uniform(0.3, 0.5) * plan.acknowledged, True)]):
        while history.acknowledged < point:
            if stop.wait(0.05):
                return
        if stop.wait(rng.uniform(0, 0.5)):
            return
        began = time.monotonic()
        try:
            if everyone:
                restart_all(workers, kill=True)
                kills.whole += 1
            else:
                victim = rng.choice(workers)
                victim.kill()
                victim.start()
                kills.single += 1
            ring(workers)
        except Exception as exc:  # ServiceStartError, TimeoutError: the cluster did not recover
            kills.failures.append(f"after a kill: {type(exc).__name__}: {exc}"[:1000])
            return
        kills.restart_seconds.append(time.monotonic() - began)


def _verify(
    plan: CrashPlan, history: History, kills: Kills, workers: Sequence[CacheProcess], s3: S3Emulator
) -> tuple[dict[str, int], list[str]]:
    """Judge the history against S3, recover the staged files no acknowledged RENAME published, and read objects
    back through the cache; returns the counts and one line per violation."""
    client = s3.client()
    objects = _objects(client)
    verdict = judge(history, objects)
    violations = [f"lost: {line}" for line in verdict.lost] + [f"torn: {line}" for line in verdict.torn]
    rng = random.Random(plan.seed)
    recovered, staged_lost, staged_torn = 0, 0, 0
    for staged in history.staged:
        if staged.published or objects.get(staged.published_key) == staged.digest:
            continue
        bodies = {p: _read(rng.choice(workers), p) for p in staged.staged_paths}
        whole = [p for p, body in bodies.items() if body is not None and digest(body) == staged.digest]
        torn = [p for p, body in bodies.items() if body is not None and digest(body) != staged.digest]
        staged_torn += len(torn)
        violations += [f"torn: staged {p} holds bytes no client sent for it" for p in torn]
        if not staged.acknowledged:
            continue
        if not whole or not _publish(rng.choice(workers), whole[0], staged.published_path):
            staged_lost += 1
            violations.append(
                f"lost: {staged.published_path}, staged and acknowledged, is in none of {staged.staged_paths}"
            )
            continue
        body = client.get_object(Bucket=BUCKET, Key=staged.published_key)["Body"].read()
        if digest(body) == staged.digest:
            recovered += 1
        else:
            staged_lost += 1
            violations.append(f"lost: {staged.published_key} published from staging holds other bytes")
    read_back, wrong = _read_back(plan, workers, client, rng)
    violations += wrong
    counts = {
        "acknowledged": history.acknowledged,
        "lost": len(verdict.lost) + staged_lost,
        "torn": len(verdict.torn) + staged_torn,
        "recovered_from_staging": recovered,
        "kills": kills.single + kills.whole,
        "whole_cluster_kills": kills.whole,
        "unacknowledged": history.counts.get("unacknowledged", 0),
        "unacknowledged_visible": verdict.unacknowledged_visible,
        "keys_checked": verdict.checked_keys,
        "read_back": read_back,
        "wrong_reads": len(wrong),
        **{k.replace(" ", "_"): v for k, v in sorted(history.counts.items()) if k.startswith("acknowledged ")},
        "slowest_restart_seconds": round(max(kills.restart_seconds, default=0)),
    }
    return counts, violations


def _objects(client: Any) -> dict[str, str]:
    """Every object in the bucket and its body's digest, straight from S3."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            found[item["Key"]] = digest(client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    return found


def _read(worker: CacheProcess, path: str) -> bytes | None:
    """``read_file`` through ``worker``, tried again for up to a minute while the cluster answers 503 (a staging
    home whose workers are still joining)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return read_file(worker.webhdfs_url, path)
        except UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _publish(worker: CacheProcess, staged_path: str, published_path: str) -> bool:
    """RENAME ``staged_path`` to ``published_path`` through ``worker``: True once done (503s tried again)."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = webhdfs(worker.webhdfs_url, "PUT", staged_path, "RENAME", destination=published_path)
        if status != 503 or time.monotonic() > deadline:
            return status == 200 and bool(answer and answer.get("boolean"))
        time.sleep(0.5)


def _read_back(
    plan: CrashPlan, workers: Sequence[CacheProcess], client: Any, rng: random.Random
) -> tuple[int, list[str]]:
    """Up to ``plan.read_back`` objects read through random workers' S3 ports, compared with S3's bytes."""
    keys = sorted(_objects_keys(client))
    sample = rng.sample(keys, min(plan.read_back, len(keys)))
    caches = [s3_client(w.s3_url) for w in workers]
    wrong = []
    for key in sample:
        truth = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        served = rng.choice(caches).get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if served != truth:
            wrong.append(f"wrong read: {key} through the cache: {len(served)} bytes, S3 holds {len(truth)}")
    return len(sample), wrong


def _objects_keys(client: Any) -> list[str]:
    return [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
