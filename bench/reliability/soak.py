"""Soak: a three-worker cluster under a steady mixed load for minutes, drained, joined and purged on the way.

Clients (``soak_load.LoadClient``) read warm and cold ranges through WebHDFS and S3, write (CREATE, PutObject),
stage and publish (RENAME), while the operator's day goes on: a purge of the whole cluster every
``purge_every`` seconds, a drain of one worker in the first third (``POST /admin/v1/cluster/drain``; once its job is
done and the others route without it, it is taken out of the clients' rotation, as a load balancer would be told,
and stopped when its requests in flight have ended) and, in the second third, that worker started again on its disk
tier (same identity), back in rotation once every worker routes by the ring of three.

Sampled every second: requests ended and failed, each worker's resident memory (``VmRSS`` of
``/proc/<pid>/status``); latency p99 per 5 s window. Guaranteed:

- **0 failed requests.** A request answered 503 and then done when sent again (``soak_load.ATTEMPTS``) counts as
  *retried*, not failed; any other error, a refused connection or bytes other than those written is a failure.
  The suite injects no failure: a drain and a join are meant to cost clients nothing.
- **No memory growth once warm**: each worker's highest RSS in the second half of its warm part is at most
  ``rss_growth_limit`` MiB above its highest in the first half. Warm: past ``WARM_FROM`` of the run and ``warm_up``
  seconds after the worker's last start (its tiers full, its code paths all taken); a worker with fewer than 10
  samples so (the one joined back, in a short run) is not judged, and ``workers_judged_warm`` says how many were.
  Peaks, not a fitted slope: every purge drops RSS by the memory tier's worth and the load fills it again, a
  sawtooth whose least-squares slope over a few periods swings by several MiB a minute either way (it is reported,
  ``rss_slope_kib_per_min``, not judged). A leak raises the peaks: over the long run's 12 warm minutes, 8 MiB
  between halves six minutes apart is about 1.3 MiB a minute; the quick run catches only a fast leak.

Figures: requests/s, p99 and RSS per worker over time, the drain, join and purges marked (``bench.plots.soak``).
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
from bench.cache_cluster import CacheCluster, worker_id
from bench.measured import fresh_work_dir
from bench.reliability.campaign import FULL, QUICK, Budget, GuaranteeResult
from bench.reliability.crash_consistency import CLUSTER
from bench.reliability.soak_load import DataSet, LoadClient, Rotation, Timeline
from bench.reliability.writers import MOUNT, Endpoint, s3_key
from cache_service.admin_client import AdminClient, AdminEndpoint, job_route
from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator

ROOT = Path(__file__).resolve().parents[2]
WORK_ROOT = ROOT / ".local" / "chaos" / "soak"
FIGURE = ROOT / "docs" / "img" / "soak.png"
BUCKET = "soak"
WARM_FROM = 0.6
"""The share of the run after which memory must not grow (the join is at ``JOIN_AT``)."""
DRAIN_AT, JOIN_AT = 0.15, 0.4
WINDOW = 5
"""Seconds per latency window."""
WORKER_NAMES = ("A", "B", "C")
GUARANTEE = "0 failed requests (503s retried) through a drain, a join and purges; no memory growth once warm"


@dataclass(frozen=True)
class SoakPlan:
    """One soak: ``seconds`` of load by ``clients`` threads on ``data``, a purge every ``purge_every`` seconds, tiers
    of ``memory`` and ``disk`` per worker, the most a worker's RSS may grow once warm (MiB, ``rss_growth_limit``) and
    how long after its start a worker may still be warming up (``warm_up`` seconds)."""

    seconds: float
    clients: int = 4
    data: DataSet = field(default_factory=lambda: DataSet(warm=8, cold=48, size=4 << 20))
    purge_every: float = 30.0
    memory: str = "16MiB"
    disk: str = "48MiB"
    rss_growth_limit: float = 8.0
    warm_up: float = 60.0


def plan_for(budget: Budget) -> SoakPlan:
    """3 minutes for the quick budget, 30 for ``FULL``."""
    return SoakPlan(seconds=1800, purge_every=120) if budget == FULL else SoakPlan(seconds=180)


def soak(budget: Budget = QUICK, *, work_dir: Path | None = None) -> list[GuaranteeResult]:
    """The soak of ``plan_for(budget)``, its figure in ``docs/img/soak.png``."""
    work = fresh_work_dir("soak", work_dir or WORK_ROOT)
    return [run(plan_for(budget), work, FIGURE, full=budget == FULL)]


@dataclass
class Operator:
    """What the operator did and when (seconds into the load), and what went wrong doing it."""

    events: list[tuple[float, str]] = field(default_factory=list)
    purges: int = 0
    drains: int = 0
    joins: int = 0
    pages_not_handed_over: int = 0
    notes: list[str] = field(default_factory=list)
    """The drain job's last message and the pages it could not give (not a failure: S3 still holds their bytes);
    kept in the run's ``series.json``."""
    problems: list[str] = field(default_factory=list)


def run(plan: SoakPlan, work: Path, figure: Path, *, full: bool = False) -> GuaranteeResult:
    """One soak of ``plan`` under ``work``, its figure drawn to ``figure``; its counts and whether it held."""
    started = time.monotonic()
    mounts = {MOUNT: f"s3://{BUCKET}/lake"}
    with (
        S3Emulator(work / "s3", buckets=[BUCKET]) as s3,
        CacheCluster(
            work / "cluster",
            3,
            s3_endpoint=s3.endpoint_url,
            mounts=mounts,
            overrides=CLUSTER,
            memory_capacity=plan.memory,
            disk_capacity=plan.disk,
        ) as cluster,
    ):
        client = s3.client()
        for index in range(plan.data.warm + plan.data.cold):
            client.put_object(Bucket=BUCKET, Key=s3_key(plan.data.path(index)), Body=plan.data.body(index))
        endpoints = [Endpoint(w.webhdfs_url, w.s3_url) for w in cluster.workers]
        timeline, operator, stop = Timeline(), Operator(), threading.Event()
        rotation = Rotation(endpoints)
        clients = [LoadClient(n, plan.data, BUCKET, rotation, timeline, stop) for n in range(plan.clients)]
        threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
        with _memory_samples(cluster.workers, timeline) as memory:
            for thread in threads:
                thread.start()
            _operate(plan, cluster, endpoints, rotation, timeline, operator)
            stop.set()
            for thread in threads:
                thread.join(60)
    series = _series(plan, timeline, memory, operator)
    (work / "series.json").write_text(json.dumps(series))
    plots.soak(series, figure)
    counts, violations = _judge(plan, timeline, operator, series)
    return GuaranteeResult.judged(
        f"soak, three workers, {plan.seconds / 60:g} min",
        GUARANTEE,
        counts,
        violations,
        campaign="soak",
        full=full,
        started=started,
    )


def _operate(
    plan: SoakPlan,
    cluster: CacheCluster,
    endpoints: list[Endpoint],
    rotation: Rotation,
    timeline: Timeline,
    operator: Operator,
) -> None:
    """Purge every ``plan.purge_every`` seconds, drain worker C at ``DRAIN_AT`` of the run and start it again at
    ``JOIN_AT``, until the run's time is up. A step that fails is a problem and the run goes on."""
    rng = random.Random(0)
    leaving, stayers = cluster.workers[2], cluster.workers[:2]
    next_purge, drained, joined = plan.purge_every, False, False
    while (now := timeline.now()) < plan.seconds:
        try:
            if not drained and now >= DRAIN_AT * plan.seconds:
                drained = True
                operator.events.append((now, "drain"))
                _drain(_admin(stayers[0]), leaving, stayers, cluster, endpoints[2], rotation, operator)
                operator.events.append((timeline.now(), "stopped"))
                operator.drains += 1
            elif drained and not joined and not leaving.running and now >= JOIN_AT * plan.seconds:
                joined = True
                operator.events.append((now, "join"))
                leaving.start()
                cluster.wait_for_ring(cluster.workers, 3)
                rotation.add(endpoints[2])
                operator.joins += 1
            elif now >= next_purge:
                next_purge += plan.purge_every
                running = [w for w in cluster.workers if w.running]
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
    cluster: CacheCluster,
    endpoint: Endpoint,
    rotation: Rotation,
    operator: Operator,
) -> None:
    """Drain ``leaving`` through another worker; out of rotation the moment its job ends (gone, it no longer hears
    the others' invalidations, so what it serves may be stale) and, once its requests in flight have ended and the
    ``stayers`` route without it, stopped. A job that left the ring but could not give some pages (evicted or
    overwritten meanwhile) ends ``failed``: counted and noted, not a problem."""
    job = admin.post("cluster/drain", {"worker": worker_id(leaving)})
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the drain job still runs after 120 s: {job}")
        time.sleep(0.05)
        job = _admin(leaving).get(job_route(job["id"]))
    rotation.remove(endpoint)
    if job["state"] != "succeeded" and not str(job.get("message", "")).endswith("left the ring"):
        rotation.add(endpoint)
        raise RuntimeError(f"the drain job ended {job['state']}: {job}")
    operator.pages_not_handed_over += len(job.get("errors", []))
    operator.notes += [f"drain: {job['message']}", *(f"{e['path']}: {e['error']}" for e in job["errors"][:3])]
    cluster.wait_for_ring(stayers, 2)
    deadline = time.monotonic() + 60
    while not rotation.idle(endpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    leaving.stop()


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
    rss = {name: np.array([s[i] for _, s in memory]) for i, name in enumerate(WORKER_NAMES)}
    warm_from = WARM_FROM * plan.seconds
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
        **{f"rss_mib_at_end_{name}": round(_last(series["rss_mib"][name])) for name in WORKER_NAMES},
        "warm_reads": ops.get("warm OPEN", 0) + ops.get("warm GetObject", 0),
        "cold_reads": ops.get("cold OPEN", 0) + ops.get("cold GetObject", 0),
        "writes": ops.get("CREATE", 0) + ops.get("PutObject", 0) + ops.get("staged CREATE", 0),
        "publishes": ops.get("RENAME publish", 0),
        "writes_read_back": ops.get("read back", 0),
        "purges": operator.purges,
        "pages_not_handed_over": operator.pages_not_handed_over,
        "drains": operator.drains,
        "joins": operator.joins,
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
    if operator.drains != 1 or operator.joins != 1:
        violations.append(f"{operator.drains} drains and {operator.joins} joins, not one of each")
    if operator.purges < int(plan.seconds // plan.purge_every) - 1:
        violations.append(f"only {operator.purges} purges")
    return counts, violations


def _last(values: list[float | None]) -> float:
    return next((v for v in reversed(values) if v is not None), 0.0)
