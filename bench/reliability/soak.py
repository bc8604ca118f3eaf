"""Soak: one worker, then a three-worker cluster, under a steady mixed load for minutes while the operator's day
goes on.

Clients (``soak_load.LoadClient``) read warm and cold ranges through WebHDFS and S3, write (CREATE, PutObject),
stage and publish (RENAME), while the operator purges the cache every ``purge_every`` seconds and:

- **on three workers** (Redis), drains worker C in the first third (``POST /admin/v1/cluster/drain``; once its job
  is done and the others route without it, it is taken out of the clients' rotation, as a load balancer would be
  told, and stopped when its requests in flight have ended) and, in the second third, starts it again on its disk
  tier (same identity), back in rotation once every worker routes by the ring of three;
- **on one worker** (no Redis), at the drain's moment, purges it and runs a warmup of the warm data set
  (``POST /admin/v1/load``), waiting for its job to end. A lone worker has no peer to hand its pages to and no ring
  to join again, and stopping it would leave the clients nothing to send to: an outage, not what a soak measures.
  A warmup is the admin job an operator runs on a lone worker under load (as the Airflow DAG does before its Spark
  jobs): its ranged GETs meet the clients' reads of the same pages (the purge first, or the clients would have them
  all cached already), and its job record stays in the worker.

Both start as the other campaigns start one worker and several (``bench.cache_cluster.cache_workers``). Sampled
every second: requests ended and failed, each worker's resident memory (``VmRSS`` of ``/proc/<pid>/status``);
latency p99 per 5 s window. Guaranteed:

- **0 failed requests.** A request answered 503 and then done when sent again (``soak_load.ATTEMPTS``) counts as
  *retried*, not failed; any other error, a refused connection or bytes other than those written is a failure.
  The suite injects no failure: a drain, a join and a warmup are meant to cost clients nothing.
- **No memory growth once warm**: each worker's highest RSS in the second half of its warm part is at most
  ``rss_growth_limit`` MiB above its highest in the first half. Warm: past ``warm_from`` of the run and ``warm_up``
  seconds after the worker's last start (its tiers full, its code paths all taken); a worker with fewer than 10
  samples so (the one joined back, in a short run) is not judged, and ``workers_judged_warm`` says how many were.
  Peaks, not a fitted slope: every purge drops RSS by the memory tier's worth and the load fills it again, a
  sawtooth whose least-squares slope over a few periods swings by several MiB a minute either way (it is reported,
  ``rss_slope_kib_per_min``, not judged). A leak raises the peaks: over the long run's 12 warm minutes, 8 MiB
  between halves six minutes apart is about 1.3 MiB a minute; the quick run catches only a fast leak.
- **The operator's steps done**: purges as planned, and one drain and one join (three workers) or one warmup (one
  worker) that ended as it should.

Figures: requests/s, p99 and RSS per worker over time, the operator's steps marked (``bench.plots.soak``), one per
run (``FIGURES``).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import plots
from bench.cache_cluster import Ring, cache_workers
from bench.measured import fresh_work_dir
from bench.reliability.campaign import FULL, QUICK, Budget, GuaranteeResult
from bench.reliability.crash_consistency import CLUSTER
from bench.reliability.soak_load import DataSet, LoadClient, Rotation, Timeline
from bench.reliability.writers import MOUNT, Endpoint, s3_key
from cache_service.admin_client import AdminClient, AdminEndpoint, job_route
from infra.cache_process import CacheProcess
from infra.cache_ring import worker_id
from infra.s3_emulator import S3Emulator

ROOT = Path(__file__).resolve().parents[2]
WORK_ROOT = ROOT / ".local" / "chaos" / "soak"
LABELS = {1: "one worker", 3: "three workers"}
"""The soak runs on one worker or on three, by these names."""
FIGURES = {1: ROOT / "docs" / "img" / "soak-one-worker.png", 3: ROOT / "docs" / "img" / "soak.png"}
BUCKET = "soak"
DRAIN_AT, JOIN_AT = 0.15, 0.4
"""When worker C is drained and started again (three workers), as shares of the run; one worker's warmup is at
``DRAIN_AT``."""
WINDOW = 5
"""Seconds per latency window."""
WORKER_NAMES = ("A", "B", "C")
JOB_SECONDS = 120.0
"""The longest the operator waits for a drain or warmup job to end."""


@dataclass(frozen=True)
class SoakPlan:
    """One soak: ``seconds`` of load by ``clients`` threads on ``data`` through ``workers`` workers (1 or 3), a purge
    every ``purge_every`` seconds, tiers of ``memory`` and ``disk`` per worker, the most a worker's RSS may grow once
    warm (MiB, ``rss_growth_limit``), the share of the run after which it is judged (``warm_from``: past the join,
    at ``JOIN_AT``) and how long after its start a worker may still be warming up (``warm_up`` seconds)."""

    seconds: float
    workers: int = 3
    clients: int = 4
    data: DataSet = field(default_factory=lambda: DataSet(warm=8, cold=48, size=4 << 20))
    purge_every: float = 30.0
    memory: str = "16MiB"
    disk: str = "48MiB"
    rss_growth_limit: float = 8.0
    warm_from: float = 0.6
    warm_up: float = 60.0

    def __post_init__(self) -> None:
        if self.workers not in LABELS:
            raise ValueError(f"a soak runs on {' or '.join(map(str, LABELS))} workers, not {self.workers}")

    @property
    def label(self) -> str:
        """``one worker`` or ``three workers``."""
        return LABELS[self.workers]

    @property
    def worker_names(self) -> tuple[str, ...]:
        """The workers' names in the figure and the counts: ``A``, then ``B`` and ``C``."""
        return WORKER_NAMES[: self.workers]

    @property
    def guarantee(self) -> str:
        """What the run guarantees, its operator's steps named."""
        steps = "a drain, a join and purges" if self.workers > 1 else "a warmup and purges"
        return f"0 failed requests (503s retried) through {steps}; no memory growth once warm"


def plans(budget: Budget) -> list[SoakPlan]:
    """One worker and three: 3 minutes each for the quick budget, 30 for ``FULL``."""
    if budget == FULL:
        return [SoakPlan(seconds=1800, workers=n, purge_every=120) for n in LABELS]
    return [SoakPlan(seconds=180, workers=n) for n in LABELS]


def soak(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """Both soaks of ``plans(budget)``, each in a folder of its own under ``work_dir``, their figures in
    ``FIGURES``."""
    work = fresh_work_dir("soak", work_dir or WORK_ROOT)
    full = budget == FULL
    return [run(plan, work / plan.label.replace(" ", "_"), FIGURES[plan.workers], full=full) for plan in plans(budget)]


@dataclass
class Operator:
    """What the operator did and when (seconds into the load), and what went wrong doing it."""

    events: list[tuple[float, str]] = field(default_factory=list)
    purges: int = 0
    drains: int = 0
    joins: int = 0
    warmups: int = 0
    pages_not_handed_over: int = 0
    notes: list[str] = field(default_factory=list)
    """The drain or warmup job's last message and the pages a drain could not give (not a failure: S3 still holds
    their bytes); kept in the run's ``series.json``."""
    problems: list[str] = field(default_factory=list)


def run(plan: SoakPlan, work: Path, figure: Path, *, full: bool = False) -> GuaranteeResult:
    """One soak of ``plan`` under ``work``, its figure drawn to ``figure``; its counts and whether it held."""
    started = time.monotonic()
    with (
        S3Emulator(work / "s3", buckets=[BUCKET]) as s3,
        cache_workers(
            work,
            plan.workers,
            s3_endpoint=s3.endpoint_url,
            mounts={MOUNT: f"s3://{BUCKET}/lake"},
            overrides=CLUSTER if plan.workers > 1 else None,
            memory_capacity=plan.memory,
            disk_capacity=plan.disk,
        ) as (workers, ring),
    ):
        client = s3.client()
        for index in range(plan.data.warm + plan.data.cold):
            client.put_object(Bucket=BUCKET, Key=s3_key(plan.data.path(index)), Body=plan.data.body(index))
        endpoints = [Endpoint(w.webhdfs_url, w.s3_url) for w in workers]
        timeline, operator, stop = Timeline(), Operator(), threading.Event()
        rotation = Rotation(endpoints)
        clients = [LoadClient(n, plan.data, BUCKET, rotation, timeline, stop) for n in range(plan.clients)]
        threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
        with _memory_samples(workers, timeline) as memory:
            for thread in threads:
                thread.start()
            _operate(plan, workers, ring, endpoints, rotation, timeline, operator)
            stop.set()
            for thread in threads:
                thread.join(60)
    series = _series(plan, timeline, memory, operator)
    (work / "series.json").write_text(json.dumps(series))
    plots.soak(series, figure)
    counts, violations = _judge(plan, timeline, operator, series)
    return GuaranteeResult.judged(
        f"soak, {plan.label}, {plan.seconds / 60:g} min",
        plan.guarantee,
        counts,
        violations,
        campaign="soak",
        full=full,
        started=started,
    )


def _operate(
    plan: SoakPlan,
    workers: list[CacheProcess],
    ring: Ring,
    endpoints: list[Endpoint],
    rotation: Rotation,
    timeline: Timeline,
    operator: Operator,
) -> None:
    """Purge every ``plan.purge_every`` seconds until the run's time is up; on three workers drain worker C at
    ``DRAIN_AT`` of the run and start it again at ``JOIN_AT``, on one warm the warm data set at ``DRAIN_AT``. A step
    that fails is a problem and the run goes on."""
    rng = random.Random(0)
    leaving, stayers = workers[-1], workers[:-1]
    next_purge, drained, joined = plan.purge_every, False, False  # drained: the step at DRAIN_AT is done
    while (now := timeline.now()) < plan.seconds:
        try:
            if not drained and now >= DRAIN_AT * plan.seconds:
                drained = True
                if stayers:
                    operator.events.append((now, "drain"))
                    _drain(_admin(stayers[0]), leaving, stayers, ring, endpoints[-1], rotation, operator)
                    operator.events.append((timeline.now(), "stopped"))
                    operator.drains += 1
                else:
                    operator.events.append((now, "warmup"))
                    _warm(_admin(leaving), plan.data, operator)
                    operator.events.append((timeline.now(), "warmed"))
                    operator.warmups += 1
            elif stayers and drained and not joined and not leaving.running and now >= JOIN_AT * plan.seconds:
                joined = True
                operator.events.append((now, "join"))
                leaving.start()
                ring(workers)
                rotation.add(endpoints[-1])
                operator.joins += 1
            elif now >= next_purge:
                next_purge += plan.purge_every
                running = [w for w in workers if w.running]
                operator.events.append((now, "purge"))
                _admin(rng.choice(running)).post("purge", {"target": 0.0})
                operator.purges += 1
        except Exception as exc:  # the load goes on; the page says what the operator could not do
            operator.problems.append(f"at {now:.0f} s: {type(exc).__name__}: {exc}"[:500])
        time.sleep(0.1)


def _drain(
    admin: AdminClient,
    leaving: CacheProcess,
    stayers: list[CacheProcess],
    ring: Ring,
    endpoint: Endpoint,
    rotation: Rotation,
    operator: Operator,
) -> None:
    """Drain ``leaving`` through another worker; out of rotation the moment its job ends (gone, it no longer hears
    the others' invalidations, so what it serves may be stale) and, once its requests in flight have ended and the
    ``stayers`` route without it, stopped. A job that left the ring but could not give some pages (evicted or
    overwritten meanwhile) ends ``failed``: counted and noted, not a problem."""
    job = _ended(_admin(leaving), admin.post("cluster/drain", {"worker": worker_id(leaving)}))
    rotation.remove(endpoint)
    if job["state"] != "succeeded" and not str(job.get("message", "")).endswith("left the ring"):
        rotation.add(endpoint)
        raise RuntimeError(f"the drain job ended {job['state']}: {job}")
    operator.pages_not_handed_over += len(job.get("errors", []))
    operator.notes += [f"drain: {job['message']}", *(f"{e['path']}: {e['error']}" for e in job["errors"][:3])]
    ring(stayers)
    deadline = time.monotonic() + 60
    while not rotation.idle(endpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    leaving.stop()


def _warm(admin: AdminClient, data: DataSet, operator: Operator) -> None:
    """Purge the worker, then load the warm objects of ``data`` into its disk tier (``POST /admin/v1/load``) and wait
    for the job to end; one that did not succeed (a page it could not load) is a problem. The purge first, as an
    operator brings back the pages today's jobs read: else the clients' reads have the warm objects cached already
    and the job skips them all, where it should fetch them while the clients read them too."""
    admin.post("purge", {"target": 0.0})
    job = _ended(admin, admin.post("load", {"paths": [data.folder(warm=True)]}))
    if job["state"] != "succeeded":
        raise RuntimeError(f"the warmup job ended {job['state']}: {job}")
    progress = job["progress"]
    operator.notes.append(
        f"warmup: {progress['files_done']} files, {progress['bytes_from_s3']:,} bytes from S3, "
        f"{progress['bytes_skipped']:,} already cached"
    )


def _ended(admin: AdminClient, job: dict[str, Any]) -> dict[str, Any]:
    """``job`` once it has ended, asked of ``admin`` (the worker that runs it). Raises ``TimeoutError`` after
    ``JOB_SECONDS``."""
    deadline = time.monotonic() + JOB_SECONDS
    while job["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {job['kind']} job still runs after {JOB_SECONDS:g} s: {job}")
        time.sleep(0.05)
        job = admin.get(job_route(job["id"]))
    return job


def _admin(worker: CacheProcess) -> AdminClient:
    return AdminClient(AdminEndpoint.from_url(worker.webhdfs_url, token=worker.token, timeout=60))


@contextmanager
def _memory_samples(workers: list[CacheProcess], timeline: Timeline) -> Iterator[list[tuple[float, list[float]]]]:
    """Each worker's RSS in MiB (NaN while it is stopped), every second while the block runs."""
    samples: list[tuple[float, list[float]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append((timeline.now(), [_rss_mib(w) for w in workers]))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def _rss_mib(worker: CacheProcess) -> float:
    pid = worker.pid
    if pid is None or not worker.running:
        return float("nan")
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # it stopped between the two looks
        return float("nan")
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kib / 1024


def _series(
    plan: SoakPlan, timeline: Timeline, memory: list[tuple[float, list[float]]], operator: Operator
) -> dict[str, Any]:
    """What the figure draws and the judge reads: requests and failures per second, p99 per window, RSS per worker
    with its growth and slope once warm, and the operator's events."""
    seconds = int(plan.seconds) + 1
    ended = np.array([r[0] for r in timeline.requests])
    latency = np.array([r[1] for r in timeline.requests])
    ok = np.array([r[3] for r in timeline.requests], dtype=bool)
    per_second = np.histogram(ended, bins=seconds, range=(0, seconds))[0]
    failed = np.histogram(ended[~ok], bins=seconds, range=(0, seconds))[0]
    windows = [(start, latency[(ended >= start) & (ended < start + WINDOW)]) for start in range(0, seconds, WINDOW)]
    p99 = [(start + WINDOW / 2, float(np.percentile(lat, 99)) * 1000) for start, lat in windows if len(lat)]
    at = np.array([t for t, _ in memory])
    rss = {name: np.array([s[i] for _, s in memory]) for i, name in enumerate(plan.worker_names)}
    warm_from = plan.warm_from * plan.seconds
    slopes, growth, warm_since = {}, {}, {}
    for name, values in rss.items():
        up = ~np.isnan(values)
        restarted = at[~up].max() if (~up).any() else 0.0
        since = max(warm_from, restarted + plan.warm_up)
        chosen = (at >= since) & up
        slopes[name], growth[name] = float("nan"), float("nan")
        if chosen.sum() >= 10:
            warm_at, warm_rss = at[chosen], values[chosen]
            middle = (since + warm_at[-1]) / 2
            slopes[name] = float(np.polyfit(warm_at, warm_rss, 1)[0] * 60)
            growth[name] = float(warm_rss[warm_at >= middle].max() - warm_rss[warm_at < middle].max())
            warm_since[name] = since
    return {
        "label": plan.label,
        "requests_per_second": per_second.tolist(),
        "failed_per_second": failed.tolist(),
        "p99": p99,
        "overall_p99_ms": float(np.percentile(latency, 99)) * 1000 if len(latency) else 0.0,
        "rss_at": at.tolist(),
        "rss_mib": {
            name: [None if np.isnan(v) else round(float(v), 2) for v in values] for name, values in rss.items()
        },
        "rss_slope_mib_per_min": slopes,
        "rss_growth_mib": growth,
        "rss_growth_limit_mib": plan.rss_growth_limit,
        "warm_since": warm_since,
        "warm_from": warm_from,
        "events": operator.events,
        "notes": operator.notes,
        "retried_by_op": timeline.retried_by_op,
        "operations": {
            op: sum(1 for r in timeline.requests if r[2] == op) for op in sorted({r[2] for r in timeline.requests})
        },
    }


def _judge(
    plan: SoakPlan, timeline: Timeline, operator: Operator, series: dict[str, Any]
) -> tuple[dict[str, int], list[str]]:
    requests, ops = len(timeline.requests), series["operations"]
    failed = sum(1 for r in timeline.requests if not r[3])
    slopes: dict[str, float] = series["rss_slope_mib_per_min"]
    growth: dict[str, float] = series["rss_growth_mib"]
    kib = {name: 0 if math.isnan(slope) else round(slope * 1024) for name, slope in slopes.items()}  # NaN: not judged
    grown = {name: 0 if math.isnan(mib) else round(mib * 1024) for name, mib in growth.items()}
    counts = {
        "requests": requests,
        "failed": failed,
        "retried_after_503": timeline.retried,
        "p99_ms": round(series["overall_p99_ms"]),
        "rss_growth_kib_max": max(grown.values()),
        "workers_judged_warm": sum(not math.isnan(mib) for mib in growth.values()),
        "wrong_reads": timeline.wrong,
        "requests_per_second": round(requests / plan.seconds),
        "worst_5s_p99_ms": round(max((p for _, p in series["p99"]), default=0)),
        **{f"rss_growth_kib_{name}": value for name, value in grown.items()},
        **{f"rss_slope_kib_per_min_{name}": value for name, value in kib.items()},
        **{f"rss_mib_at_end_{name}": round(_last(values)) for name, values in series["rss_mib"].items()},
        "warm_reads": ops.get("warm OPEN", 0) + ops.get("warm GetObject", 0),
        "cold_reads": ops.get("cold OPEN", 0) + ops.get("cold GetObject", 0),
        "writes": ops.get("CREATE", 0) + ops.get("PutObject", 0) + ops.get("staged CREATE", 0),
        "publishes": ops.get("RENAME publish", 0),
        "writes_read_back": ops.get("read back", 0),
        "purges": operator.purges,
        "pages_not_handed_over": operator.pages_not_handed_over,
        "drains": operator.drains,
        "joins": operator.joins,
        "warmups": operator.warmups,
    }
    violations = [f"failed: {line}" for line in timeline.failures]
    if failed > len(timeline.failures):
        violations.append(f"failed: {failed} requests in all")
    violations += [f"operator: {line}" for line in operator.problems]
    if all(math.isnan(mib) for mib in growth.values()):
        violations.append("no worker was up long enough to be judged warm")
    for name, mib in growth.items():
        if mib > plan.rss_growth_limit:
            violations.append(
                f"worker {name}: RSS peaked {mib:.1f} MiB higher in the second half of its warm part than in the "
                f"first (limit {plan.rss_growth_limit:g} MiB)"
            )
    if plan.workers > 1 and (operator.drains != 1 or operator.joins != 1):
        violations.append(f"{operator.drains} drains and {operator.joins} joins, not one of each")
    if plan.workers == 1 and operator.warmups != 1:
        violations.append(f"{operator.warmups} warmups, not one")
    if operator.purges < int(plan.seconds // plan.purge_every) - 1:
        violations.append(f"only {operator.purges} purges")
    return counts, violations


def _last(values: list[float | None]) -> float:
    return next((v for v in reversed(values) if v is not None), 0.0)
